-- Macro series (FRED and derived), one row per indicator and date.
CREATE TABLE macro_indicators (
    id             uuid        NOT NULL DEFAULT gen_random_uuid(),
    indicator_id   text        NOT NULL,
    indicator_name text        NOT NULL,
    date           date        NOT NULL,
    value          numeric     NOT NULL,
    units          text,
    frequency      text,
    source         text        DEFAULT 'FRED',
    last_updated   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT macro_indicators_pkey PRIMARY KEY (id)
);
CREATE INDEX idx_macro_indicators_date           ON macro_indicators (date DESC);
CREATE INDEX idx_macro_indicators_indicator_date ON macro_indicators (indicator_id, date DESC);
CREATE INDEX idx_macro_indicators_indicator_id   ON macro_indicators (indicator_id);
CREATE UNIQUE INDEX uq_macro_indicators_indicator_date ON macro_indicators (indicator_id, date);
