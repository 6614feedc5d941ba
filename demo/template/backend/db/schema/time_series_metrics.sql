-- Time series of portfolio analytics keyed by (portfolio, asof_date, pricing pack): metrics,
-- currency attribution, factor exposures. Hypertables on asof_date under TimescaleDB; plain
-- tables here. portfolio_id has no foreign key in these tables.

CREATE TABLE portfolio_metrics (
    portfolio_id             uuid          NOT NULL,
    asof_date                date          NOT NULL,          -- part of the PK; no as_of_date
    pricing_pack_id          text          NOT NULL,
    twr_1d                   numeric(12,8),
    twr_1d_base              numeric(12,8),
    twr_mtd                  numeric(12,8),
    twr_qtd                  numeric(12,8),
    twr_ytd                  numeric(12,8),
    twr_1y                   numeric(12,8),
    twr_3y_ann               numeric(12,8),
    twr_5y_ann               numeric(12,8),
    twr_inception_ann        numeric(12,8),
    mwr_ytd                  numeric(12,8),
    mwr_1y                   numeric(12,8),
    mwr_3y_ann               numeric(12,8),
    mwr_inception_ann        numeric(12,8),
    volatility_30d           numeric(12,8),
    volatility_60d           numeric(12,8),
    volatility_90d           numeric(12,8),
    volatility_1y            numeric(12,8),
    sharpe_30d               numeric(12,8),
    sharpe_60d               numeric(12,8),
    sharpe_90d               numeric(12,8),
    sharpe_1y                numeric(12,8),
    max_drawdown_1y          numeric(12,8),
    max_drawdown_3y          numeric(12,8),
    current_drawdown         numeric(12,8),
    alpha_1y                 numeric(12,8),
    alpha_3y_ann             numeric(12,8),
    beta_1y                  numeric(12,8),
    beta_3y                  numeric(12,8),
    tracking_error_1y        numeric(12,8),
    information_ratio_1y     numeric(12,8),
    win_rate_1y              numeric(5,4),
    avg_win                  numeric(12,8),
    avg_loss                 numeric(12,8),
    portfolio_value_base     numeric(20,2),
    portfolio_value_local    numeric(20,2),
    cash_balance             numeric(20,2),
    base_currency            text          NOT NULL,
    benchmark_id             text,
    reconciliation_error_bps numeric(10,4),
    created_at               timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT portfolio_metrics_pkey PRIMARY KEY (portfolio_id, asof_date, pricing_pack_id),
    CONSTRAINT portfolio_metrics_pricing_pack_id_fkey FOREIGN KEY (pricing_pack_id)
        REFERENCES pricing_packs (id)
);
CREATE INDEX idx_portfolio_metrics_portfolio ON portfolio_metrics (portfolio_id, asof_date DESC);
CREATE INDEX idx_portfolio_metrics_pack      ON portfolio_metrics (pricing_pack_id);
CREATE INDEX idx_portfolio_metrics_date      ON portfolio_metrics (asof_date DESC);

CREATE TABLE currency_attribution (
    portfolio_id            uuid          NOT NULL,
    asof_date               date          NOT NULL,
    pricing_pack_id         text          NOT NULL,
    local_return            numeric(12,8) NOT NULL,
    fx_return               numeric(12,8) NOT NULL,
    interaction_return      numeric(12,8) NOT NULL,
    total_return            numeric(12,8) NOT NULL,
    base_return_actual      numeric(12,8) NOT NULL,
    error_bps               numeric(10,4),
    attribution_by_currency jsonb,
    base_currency           text          NOT NULL,
    created_at              timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT currency_attribution_pkey PRIMARY KEY (portfolio_id, asof_date, pricing_pack_id),
    CONSTRAINT currency_attribution_pricing_pack_id_fkey FOREIGN KEY (pricing_pack_id)
        REFERENCES pricing_packs (id),
    CONSTRAINT chk_currency_attribution_identity CHECK (error_bps IS NULL OR error_bps <= 0.1)
);
CREATE INDEX idx_currency_attribution_portfolio ON currency_attribution (portfolio_id, asof_date DESC);
CREATE INDEX idx_currency_attribution_pack      ON currency_attribution (pricing_pack_id);

CREATE TABLE factor_exposures (
    portfolio_id           uuid          NOT NULL,
    asof_date              date          NOT NULL,
    pricing_pack_id        text          NOT NULL,
    beta_real_rate         numeric(12,8),
    beta_inflation         numeric(12,8),
    beta_credit            numeric(12,8),
    beta_fx                numeric(12,8),
    beta_market            numeric(12,8),
    beta_size              numeric(12,8),
    beta_value             numeric(12,8),
    beta_momentum          numeric(12,8),
    var_factor             numeric(12,8),
    var_idiosyncratic      numeric(12,8),
    r_squared              numeric(5,4),
    factor_contributions   jsonb,
    estimation_window_days integer,
    benchmark_id           text,
    created_at             timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT factor_exposures_pkey PRIMARY KEY (portfolio_id, asof_date, pricing_pack_id),
    CONSTRAINT factor_exposures_pricing_pack_id_fkey FOREIGN KEY (pricing_pack_id)
        REFERENCES pricing_packs (id)
);
CREATE INDEX idx_factor_exposures_portfolio ON factor_exposures (portfolio_id, asof_date DESC);
CREATE INDEX idx_factor_exposures_pack      ON factor_exposures (pricing_pack_id);
