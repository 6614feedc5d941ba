-- Money in and out of a portfolio (for money-weighted returns). Flows derived from a ledger
-- transaction keep its id; manual flows have none. amount is rounded to cents.
CREATE TABLE portfolio_cash_flows (
    id             uuid                  NOT NULL DEFAULT gen_random_uuid(),
    portfolio_id   uuid                  NOT NULL,
    flow_date      date                  NOT NULL,
    flow_type      character varying(20) NOT NULL,
    amount         numeric(20,2)         NOT NULL,
    currency       character varying(3)  NOT NULL DEFAULT 'CAD',
    transaction_id uuid,
    description    text,
    created_at     timestamptz           NOT NULL DEFAULT now(),
    CONSTRAINT portfolio_cash_flows_pkey PRIMARY KEY (id),
    CONSTRAINT portfolio_cash_flows_portfolio_id_fkey FOREIGN KEY (portfolio_id)
        REFERENCES portfolios (id) ON DELETE CASCADE,
    -- a transaction with a cash flow cannot be deleted on its own
    CONSTRAINT portfolio_cash_flows_transaction_id_fkey FOREIGN KEY (transaction_id)
        REFERENCES transactions (id),
    CONSTRAINT portfolio_cash_flows_flow_type_check CHECK (flow_type IN
        ('DEPOSIT', 'WITHDRAWAL', 'DIVIDEND', 'INTEREST', 'FEE')),
    -- NULLs are distinct: manual flows are never de-duplicated
    CONSTRAINT unique_portfolio_flow UNIQUE (portfolio_id, flow_date, flow_type, transaction_id)
);
CREATE INDEX idx_portfolio_cash_flows_portfolio   ON portfolio_cash_flows (portfolio_id, flow_date DESC);
CREATE INDEX idx_portfolio_cash_flows_date        ON portfolio_cash_flows (flow_date DESC);
CREATE INDEX idx_portfolio_cash_flows_transaction ON portfolio_cash_flows (transaction_id)
    WHERE transaction_id IS NOT NULL;
