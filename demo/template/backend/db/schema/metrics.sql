-- Derived metrics and macro series.
-- Naming is inconsistent on purpose (as_of_date here, asof_date for macro series);
-- the refactoring plan standardises on asof_date.

CREATE TABLE IF NOT EXISTS portfolio_metrics (
    portfolio_id uuid NOT NULL REFERENCES portfolios(id),
    as_of_date   date NOT NULL,
    twr          numeric(12,6),
    volatility   numeric(12,6),
    sharpe       numeric(12,6),
    max_drawdown numeric(12,6),
    PRIMARY KEY (portfolio_id, as_of_date)
);

CREATE TABLE IF NOT EXISTS macro_indicators (
    series_id text          NOT NULL,
    asof_date date          NOT NULL,
    value     numeric(18,6) NOT NULL,
    PRIMARY KEY (series_id, asof_date)
);
