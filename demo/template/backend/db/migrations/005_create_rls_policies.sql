-- 005: row-level security. The API sets app.user_id per request; a non-owner role then sees
-- only the rows of that user's portfolios. RLS is enabled, not forced: the table owner (who
-- runs migrations and jobs) sees every row.
ALTER TABLE portfolios ENABLE ROW LEVEL SECURITY;
CREATE POLICY portfolios_isolation ON portfolios FOR ALL
    USING (user_id = current_setting('app.user_id', true)::uuid);

ALTER TABLE lots ENABLE ROW LEVEL SECURITY;
CREATE POLICY lots_isolation ON lots FOR ALL
    USING (EXISTS (SELECT FROM portfolios AS p WHERE p.id = lots.portfolio_id
                     AND p.user_id = current_setting('app.user_id', true)::uuid));

ALTER TABLE transactions ENABLE ROW LEVEL SECURITY;
CREATE POLICY transactions_isolation ON transactions FOR ALL
    USING (EXISTS (SELECT FROM portfolios AS p WHERE p.id = transactions.portfolio_id
                     AND p.user_id = current_setting('app.user_id', true)::uuid));

ALTER TABLE portfolio_metrics ENABLE ROW LEVEL SECURITY;
CREATE POLICY portfolio_metrics_isolation ON portfolio_metrics FOR ALL
    USING (EXISTS (SELECT FROM portfolios AS p WHERE p.id = portfolio_metrics.portfolio_id
                     AND p.user_id = current_setting('app.user_id', true)::uuid));

ALTER TABLE currency_attribution ENABLE ROW LEVEL SECURITY;
CREATE POLICY currency_attribution_isolation ON currency_attribution FOR ALL
    USING (EXISTS (SELECT FROM portfolios AS p WHERE p.id = currency_attribution.portfolio_id
                     AND p.user_id = current_setting('app.user_id', true)::uuid));

ALTER TABLE factor_exposures ENABLE ROW LEVEL SECURITY;
CREATE POLICY factor_exposures_isolation ON factor_exposures FOR ALL
    USING (EXISTS (SELECT FROM portfolios AS p WHERE p.id = factor_exposures.portfolio_id
                     AND p.user_id = current_setting('app.user_id', true)::uuid));
