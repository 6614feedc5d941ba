-- Pricing packs: one immutable set of prices and FX rates per day and policy; the security
-- master; FX rates and end-of-day prices, each belonging to a pack. Global data: no RLS.

CREATE FUNCTION update_pricing_packs_updated_at() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$f$;

CREATE FUNCTION update_securities_updated_at() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$f$;

CREATE TABLE pricing_packs (
    id                       text          NOT NULL,          -- e.g. PP_2025-10-31
    date                     date          NOT NULL,
    policy                   text          NOT NULL DEFAULT 'WM4PM_CAD',
    hash                     text          NOT NULL,
    superseded_by            text,
    sources_json             jsonb         NOT NULL DEFAULT '{}'::jsonb,
    status                   text          NOT NULL DEFAULT 'warming',
    is_fresh                 boolean       NOT NULL DEFAULT false,
    prewarm_done             boolean       NOT NULL DEFAULT false,
    reconciliation_passed    boolean       NOT NULL DEFAULT false,
    reconciliation_failed    boolean       NOT NULL DEFAULT false,
    reconciliation_error_bps numeric(10,4),
    error_message            text,
    created_at               timestamptz   NOT NULL DEFAULT now(),
    updated_at               timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT pricing_packs_pkey PRIMARY KEY (id),
    CONSTRAINT pricing_packs_superseded_by_fkey FOREIGN KEY (superseded_by) REFERENCES pricing_packs (id),
    CONSTRAINT chk_pricing_packs_status CHECK (status IN ('warming', 'fresh', 'error')),
    -- passed => error within 1 bp (or unknown); failed => above 1 bp (or unknown); or neither
    CONSTRAINT chk_pricing_packs_reconciliation CHECK (
           (reconciliation_passed AND coalesce(reconciliation_error_bps <= 1.0, true))
        OR (reconciliation_failed AND coalesce(reconciliation_error_bps > 1.0, true))
        OR (NOT reconciliation_passed AND NOT reconciliation_failed))
);
CREATE INDEX idx_pricing_packs_date          ON pricing_packs (date DESC);
CREATE INDEX idx_pricing_packs_status        ON pricing_packs (status);
CREATE INDEX idx_pricing_packs_is_fresh      ON pricing_packs (is_fresh) WHERE is_fresh = true;
CREATE INDEX idx_pricing_packs_superseded_by ON pricing_packs (superseded_by) WHERE superseded_by IS NOT NULL;
CREATE UNIQUE INDEX uq_pricing_packs_date_policy ON pricing_packs (date, policy) WHERE superseded_by IS NULL;
CREATE TRIGGER trg_pricing_packs_updated_at BEFORE UPDATE ON pricing_packs
    FOR EACH ROW EXECUTE FUNCTION update_pricing_packs_updated_at();

-- The security master. lots and transactions refer to it by id, without a foreign key.
CREATE TABLE securities (
    id                uuid        NOT NULL DEFAULT gen_random_uuid(),
    symbol            text        NOT NULL,
    name              text,
    security_type     text        NOT NULL DEFAULT 'equity',
    exchange          text,
    trading_currency  text        NOT NULL DEFAULT 'USD',
    dividend_currency text,
    domicile_country  text,
    active            boolean     DEFAULT true,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT securities_pkey PRIMARY KEY (id)
);
-- symbol uniqueness is a unique index, not a constraint
CREATE UNIQUE INDEX idx_securities_symbol ON securities (symbol);
CREATE INDEX idx_securities_active ON securities (active) WHERE active = true;
CREATE TRIGGER trg_securities_updated_at BEFORE UPDATE ON securities
    FOR EACH ROW EXECUTE FUNCTION update_securities_updated_at();

CREATE TABLE fx_rates (
    id              uuid           NOT NULL DEFAULT gen_random_uuid(),
    pricing_pack_id text           NOT NULL,
    base_ccy        text           NOT NULL,
    quote_ccy       text           NOT NULL,
    asof_ts         timestamptz    NOT NULL,
    rate            numeric(20,10) NOT NULL,
    source          text           NOT NULL,
    policy          text,
    created_at      timestamptz    NOT NULL DEFAULT now(),
    CONSTRAINT fx_rates_pkey PRIMARY KEY (id),
    CONSTRAINT fx_rates_pricing_pack_id_fkey FOREIGN KEY (pricing_pack_id)
        REFERENCES pricing_packs (id) ON DELETE CASCADE
);
CREATE INDEX idx_fx_rates_pair ON fx_rates (base_ccy, quote_ccy, asof_ts DESC);
CREATE INDEX idx_fx_rates_pack ON fx_rates (pricing_pack_id);
CREATE UNIQUE INDEX idx_fx_rates_unique ON fx_rates (base_ccy, quote_ccy, pricing_pack_id);

CREATE TABLE prices (
    id                     uuid          NOT NULL DEFAULT gen_random_uuid(),
    security_id            uuid          NOT NULL,
    pricing_pack_id        text          NOT NULL,
    asof_date              date          NOT NULL,
    close                  numeric(20,8) NOT NULL,
    open                   numeric(20,8),
    high                   numeric(20,8),
    low                    numeric(20,8),
    volume                 bigint,
    currency               text          NOT NULL,
    source                 text          NOT NULL,
    adjusted_for_splits    boolean       DEFAULT true,
    adjusted_for_dividends boolean       DEFAULT false,
    created_at             timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT prices_pkey PRIMARY KEY (id),
    CONSTRAINT prices_security_id_fkey FOREIGN KEY (security_id)
        REFERENCES securities (id) ON DELETE CASCADE,
    CONSTRAINT prices_pricing_pack_id_fkey FOREIGN KEY (pricing_pack_id)
        REFERENCES pricing_packs (id) ON DELETE CASCADE
);
CREATE INDEX idx_prices_security  ON prices (security_id, asof_date DESC);
CREATE INDEX idx_prices_pack      ON prices (pricing_pack_id);
CREATE INDEX idx_prices_asof_date ON prices (asof_date DESC);
-- the conflict target of every price upsert: ON CONFLICT (security_id, pricing_pack_id)
CREATE UNIQUE INDEX idx_prices_unique ON prices (security_id, pricing_pack_id);
