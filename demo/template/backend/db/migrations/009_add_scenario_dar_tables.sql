-- 009: drawdown-at-risk history and stored scenario results.
-- Also (re)declares the factor tables the scenario engine reads; schema/ has the current
-- shape of both, so these are no-ops on a database built from schema/ first.

CREATE TABLE IF NOT EXISTS position_factor_betas (
    portfolio_id uuid                  NOT NULL,
    security_id  uuid                  NOT NULL,
    factor_name  character varying(50) NOT NULL,
    beta         numeric(10,4)         NOT NULL,
    updated_at   timestamptz           NOT NULL DEFAULT now(),
    PRIMARY KEY (portfolio_id, security_id, factor_name)
);

CREATE TABLE IF NOT EXISTS scenario_shocks (
    scenario_id      uuid        NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    scenario_name    text        NOT NULL,
    shock_type       text        NOT NULL,
    shock_definition jsonb       NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE dar_history (
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    portfolio_id    uuid        NOT NULL,
    user_id         uuid        NOT NULL,
    asof_date       date        NOT NULL,
    regime          text        NOT NULL,
    confidence      numeric     NOT NULL,
    horizon_days    integer     NOT NULL,
    num_simulations integer     NOT NULL,
    dar             numeric     NOT NULL,
    dar_pct         numeric     NOT NULL,
    mean_drawdown   numeric     NOT NULL,
    median_drawdown numeric     NOT NULL,
    max_drawdown    numeric     NOT NULL,
    current_nav     numeric     NOT NULL,
    pricing_pack_id text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT dar_history_pkey PRIMARY KEY (id),
    CONSTRAINT dar_history_portfolio_id_fkey FOREIGN KEY (portfolio_id)
        REFERENCES portfolios (id) ON DELETE CASCADE,
    CONSTRAINT dar_history_regime_check CHECK (regime IN ('EARLY_EXPANSION', 'MID_EXPANSION',
        'LATE_EXPANSION', 'EARLY_CONTRACTION', 'DEEP_CONTRACTION')),
    CONSTRAINT dar_history_confidence_check CHECK (confidence >= 0 AND confidence <= 1)
);
CREATE INDEX idx_dar_history_portfolio_id   ON dar_history (portfolio_id);
CREATE INDEX idx_dar_history_asof_date      ON dar_history (asof_date DESC);
CREATE INDEX idx_dar_history_regime         ON dar_history (regime);
CREATE INDEX idx_dar_history_portfolio_date ON dar_history (portfolio_id, asof_date DESC);
CREATE INDEX idx_dar_history_user_id        ON dar_history (user_id);
CREATE UNIQUE INDEX uq_dar_history_portfolio_date_regime ON dar_history (portfolio_id, asof_date, regime);

CREATE TABLE scenario_results (
    id                    uuid        NOT NULL DEFAULT gen_random_uuid(),
    portfolio_id          uuid        NOT NULL,
    user_id               uuid        NOT NULL,
    shock_type            text        NOT NULL,
    asof_date             date        NOT NULL,
    total_delta_pnl       numeric     NOT NULL,
    total_delta_pnl_pct   numeric     NOT NULL,
    winners_json          jsonb,
    losers_json           jsonb,
    suggested_hedges_json jsonb,
    shock_definition_json jsonb,
    pricing_pack_id       text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT scenario_results_pkey PRIMARY KEY (id),
    CONSTRAINT scenario_results_portfolio_id_fkey FOREIGN KEY (portfolio_id)
        REFERENCES portfolios (id) ON DELETE CASCADE
);
CREATE INDEX idx_scenario_results_portfolio_id   ON scenario_results (portfolio_id);
CREATE INDEX idx_scenario_results_shock_type     ON scenario_results (shock_type);
CREATE INDEX idx_scenario_results_asof_date      ON scenario_results (asof_date DESC);
CREATE INDEX idx_scenario_results_portfolio_date ON scenario_results (portfolio_id, asof_date DESC);
CREATE INDEX idx_scenario_results_user_id        ON scenario_results (user_id);
CREATE UNIQUE INDEX uq_scenario_results_portfolio_shock_date ON scenario_results (portfolio_id, shock_type, asof_date);
