-- Factor model inputs used by the risk and scenario services.
-- (Also defined, identically, by migration 009 - a duplicate the plan removes.)

CREATE TABLE IF NOT EXISTS position_factor_betas (
    security_id uuid          NOT NULL,
    factor      text          NOT NULL,
    beta        numeric(12,6) NOT NULL,
    asof_date   date          NOT NULL,
    PRIMARY KEY (security_id, factor, asof_date)
);

CREATE TABLE IF NOT EXISTS scenario_shocks (
    scenario_id   text          NOT NULL,
    scenario_name text          NOT NULL,
    family        text          NOT NULL,
    factor        text          NOT NULL,
    shock         numeric(12,6) NOT NULL,
    PRIMARY KEY (scenario_id, factor)
);
