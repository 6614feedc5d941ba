-- DawsOS core schema: portfolios.
-- Every object is created with IF NOT EXISTS so the file can be re-applied safely.

CREATE TABLE IF NOT EXISTS portfolios (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name          text        NOT NULL,
    base_currency text        NOT NULL DEFAULT 'USD',
    created_at    timestamptz NOT NULL DEFAULT now()
);
