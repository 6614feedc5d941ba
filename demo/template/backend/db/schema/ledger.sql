-- Ledger: tax lots and the transactions that open / reduce them.
-- Known gap: lots.security_id and transactions.security_id have no FK to securities
-- (the integrity work of the refactoring plan adds it), and there is no index on the
-- portfolio_id / security_id columns yet.

CREATE TABLE IF NOT EXISTS lots (
    id               uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    portfolio_id     uuid          NOT NULL REFERENCES portfolios(id),
    security_id      uuid          NOT NULL,
    quantity         numeric(20,6) NOT NULL,
    cost_basis       numeric(20,4) NOT NULL,
    acquisition_date date          NOT NULL,
    qty_opened_at    timestamptz   NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS transactions (
    id           uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    portfolio_id uuid          NOT NULL REFERENCES portfolios(id),
    security_id  uuid          NOT NULL,
    lot_id       uuid,
    type         text          NOT NULL CHECK (type IN ('BUY', 'SELL', 'DIVIDEND', 'SPLIT')),
    quantity     numeric(20,6) NOT NULL,
    price        numeric(18,4) NOT NULL,
    amount       numeric(20,4) NOT NULL,
    trade_date   date          NOT NULL,
    created_at   timestamptz   NOT NULL DEFAULT now()
);
