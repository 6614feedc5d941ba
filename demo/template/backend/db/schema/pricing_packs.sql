-- Pricing packs: the security master and end-of-day closes.
-- NOTE: prices.security_id deliberately has no FK (packs are loaded before the master
-- is reconciled).

CREATE TABLE IF NOT EXISTS securities (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    symbol      text NOT NULL UNIQUE,
    name        text NOT NULL,
    asset_class text NOT NULL,
    sector      text,
    currency    text NOT NULL DEFAULT 'USD'
);

CREATE TABLE IF NOT EXISTS prices (
    security_id uuid          NOT NULL,
    price_date  date          NOT NULL,
    close       numeric(18,4) NOT NULL,
    volume      bigint,
    PRIMARY KEY (security_id, price_date)
);
