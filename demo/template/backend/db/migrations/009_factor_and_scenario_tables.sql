-- 009: factor betas and scenario shocks for the risk agents.
-- KNOWN DEFECT: these definitions duplicate backend/db/schema/factors.sql.

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

INSERT INTO schema_migrations (version) VALUES ('009') ON CONFLICT (version) DO NOTHING;
