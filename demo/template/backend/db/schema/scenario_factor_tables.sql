-- Factor betas per position and scenario shock definitions, in the shape the risk and
-- scenario services read (migration 009 has older copies of both).

CREATE TABLE position_factor_betas (
    portfolio_id uuid                  NOT NULL,
    security_id  uuid                  NOT NULL,
    factor_name  character varying(50) NOT NULL,
    beta         numeric(10,4)         NOT NULL,
    updated_at   timestamptz           NOT NULL DEFAULT now(),
    CONSTRAINT position_factor_betas_pkey PRIMARY KEY (portfolio_id, security_id, factor_name),
    CONSTRAINT chk_factor_name CHECK (factor_name IN ('real_rates', 'inflation', 'credit_spreads',
        'fx_usd', 'equity_market', 'size', 'value', 'momentum', 'volatility', 'liquidity',
        'commodity', 'duration', 'convexity', 'carry', 'term_structure'))
);
CREATE INDEX idx_position_factor_betas_portfolio ON position_factor_betas (portfolio_id);
CREATE INDEX idx_position_factor_betas_security  ON position_factor_betas (security_id);
CREATE INDEX idx_position_factor_betas_factor    ON position_factor_betas (factor_name);
CREATE INDEX idx_position_factor_betas_updated   ON position_factor_betas (updated_at DESC);

-- shock_definition: {"description": ..., "category": ..., "shocks": {factor_name: move}}
CREATE TABLE scenario_shocks (
    scenario_id      uuid                   NOT NULL DEFAULT gen_random_uuid(),
    scenario_name    character varying(100) NOT NULL,
    shock_definition jsonb                  NOT NULL,
    created_at       timestamptz            NOT NULL DEFAULT now(),
    CONSTRAINT scenario_shocks_pkey PRIMARY KEY (scenario_id),
    CONSTRAINT scenario_shocks_scenario_name_key UNIQUE (scenario_name),
    CONSTRAINT chk_shock_definition_structure CHECK (shock_definition ? 'description'
        AND shock_definition ? 'category' AND shock_definition ? 'shocks')
);
CREATE INDEX idx_scenario_shocks_category   ON scenario_shocks ((shock_definition ->> 'category'));
CREATE INDEX idx_scenario_shocks_created    ON scenario_shocks (created_at DESC);
CREATE INDEX idx_scenario_shocks_definition ON scenario_shocks USING gin (shock_definition);
CREATE INDEX idx_scenario_shocks_name       ON scenario_shocks (scenario_name);
