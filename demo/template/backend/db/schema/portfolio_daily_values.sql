-- Daily valuation of each portfolio (a hypertable under TimescaleDB; a plain table here).
CREATE TABLE portfolio_daily_values (
    portfolio_id    uuid                 NOT NULL,
    valuation_date  date                 NOT NULL,
    total_value     numeric(20,2)        NOT NULL,
    cash_balance    numeric(20,2)        NOT NULL DEFAULT 0,
    positions_value numeric(20,2)        NOT NULL DEFAULT 0,
    cash_flows      numeric(20,2)        NOT NULL DEFAULT 0,
    currency        character varying(3) NOT NULL DEFAULT 'CAD',
    computed_at     timestamptz          NOT NULL DEFAULT now(),
    CONSTRAINT portfolio_daily_values_pkey PRIMARY KEY (portfolio_id, valuation_date),
    CONSTRAINT portfolio_daily_values_portfolio_id_fkey FOREIGN KEY (portfolio_id)
        REFERENCES portfolios (id) ON DELETE CASCADE
);
CREATE INDEX idx_portfolio_daily_values_date      ON portfolio_daily_values (valuation_date DESC);
CREATE INDEX idx_portfolio_daily_values_portfolio ON portfolio_daily_values (portfolio_id, valuation_date DESC);
