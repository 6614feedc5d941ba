"""Deterministic, set-based seed data for the DawsOS demo database (the real schema's structure).

Every id is md5('<kind>-' || key)::uuid and every value, timestamps included, derives from the
row number: two databases seeded with the same `rows` are identical (see table_checksum). Dates
end on 2025-10-31 (a Friday); "business day d" is d weekdays before it. No now(), random() or
session time zone is involved.

`rows` is the number of lots. Each lot's fate is fixed once in a plan (a temporary table), and
its lot row and transactions derive from that plan, so the data carries what the real schema
allows and the migrations must cope with:
  * closed lots (qty_open = 0, is_open false, closed_date set, quantity still > 0), some closed
    by two SELLs; partially sold lots whose quantity diverged from qty_original; 2-for-1 splits;
  * SELLs pointing at their lot (transactions.lot_id, ON DELETE SET NULL), a few unlinked;
  * cash flows pointing at their DIVIDEND / FEE / TRANSFER transaction (NO ACTION), plus manual
    flows (transaction_id NULL, duplicates allowed);
  * 0.5 % orphans: one lot per block of 200 points at a security_id with no securities row, and
    so do all its transactions (two orphan lots share each missing security);
  * unconstrained numerics with more than 6 decimals (8 in qty_original / qty_open);
  * historical updated_at stamps (any UPDATE re-stamps them through the tables' triggers).

Sizes: portfolios max(5, rows / 2000); users max(3, portfolios / 2) + the system admin;
securities 500; pricing packs, prices and FX rates over 30 business days; transactions about
1.6 x rows. Lots are inserted in chunks of CHUNK, so a 10M-row seed never builds one giant
statement result.
"""
from __future__ import annotations

import psycopg
from psycopg import sql as _sql

CHUNK = 500_000
TABLES = (
    "users", "portfolios", "pricing_packs", "securities", "fx_rates", "prices", "lots",
    "transactions", "portfolio_cash_flows", "portfolio_metrics", "currency_attribution",
    "factor_exposures", "portfolio_daily_values", "dar_history", "scenario_results",
    "position_factor_betas", "scenario_shocks", "macro_indicators", "audit_log",
    "refresh_tokens", "token_blacklist",
)
MACRO_SERIES = (("GDP", "Gross domestic product", "Bil. of $", 27000, 0.002),
                ("CPI", "Consumer price index", "Index 1982-1984=100", 310, 0.003),
                ("UNRATE", "Unemployment rate", "Percent", 3.5, 0.01),
                ("T10Y2Y", "10-year minus 2-year Treasury spread", "Percent", -0.4, -0.02),
                ("DXY", "US dollar index", "Index", 100, 0.004),
                ("CREDIT_SPREAD", "BAA corporate spread", "Percent", 1.2, 0.015))
MACRO_WEEKS = 60
FACTORS = ("equity_market", "real_rates", "credit_spreads", "fx_usd")
SCENARIOS = (("Equity crash -30%", "market", -0.30, "Broad equity sell-off"),
             ("Rates +200bp", "rates", -0.12, "Parallel shift of the curve"),
             ("Credit spreads +300bp", "deleveraging", -0.18, "Credit crunch"),
             ("Debt deflation", "deleveraging", -0.22, "Ugly deleveraging"),
             ("Beautiful deleveraging", "deleveraging", -0.06, "Balanced deleveraging"),
             ("Reflation rally", "market", 0.12, "Growth and inflation surprise"))

HELPERS = """
CREATE OR REPLACE FUNCTION pg_temp.bday(d bigint) RETURNS date LANGUAGE sql IMMUTABLE
AS $$ SELECT date '2025-10-31' - ((d / 5) * 7 + d % 5)::integer $$;
CREATE OR REPLACE FUNCTION pg_temp.ts(d date, h integer) RETURNS timestamptz LANGUAGE sql IMMUTABLE
AS $$ SELECT (d + make_time(h, 0, 0)) AT TIME ZONE 'UTC' $$
"""

REFERENCE = [
    # users (the system admin first), portfolios
    """
INSERT INTO users (id, email, password_hash, role, created_at, updated_at, last_login_at,
                   is_active, failed_login_attempts, locked_until)
SELECT '00000000-0000-0000-0000-000000000000'::uuid, 'admin@demo.dawsos.io', 'demo-not-a-hash-admin',
       'ADMIN', pg_temp.ts('2023-01-02', 9), pg_temp.ts('2025-10-31', 9), pg_temp.ts('2025-10-31', 9),
       true, 0, NULL::timestamptz
UNION ALL
SELECT md5('user-' || u)::uuid, 'user' || u || '@demo.dawsos.io', 'demo-not-a-hash-' || u,
       (ARRAY['USER', 'USER', 'MANAGER', 'VIEWER'])[u % 4 + 1],
       pg_temp.ts(pg_temp.bday(700 + u), 9), pg_temp.ts(pg_temp.bday(u % 30), 10),
       CASE WHEN u % 5 <> 0 THEN pg_temp.ts(pg_temp.bday(u % 30), 10) END,
       u % 17 <> 0, u % 3, NULL
  FROM generate_series(1, __NUSERS__) AS u""",
    """
INSERT INTO portfolios (id, user_id, name, description, base_currency, benchmark_id, is_active,
                        created_at, updated_at)
SELECT md5('portfolio-' || k)::uuid, md5('user-' || ((k - 1) % __NUSERS__ + 1))::uuid,
       'Portfolio ' || lpad(k::text, 5, '0'), CASE WHEN k % 3 = 0 THEN 'demo portfolio ' || k END,
       CASE WHEN k % 2 = 0 THEN 'CAD' ELSE 'USD' END,
       (ARRAY['SPY', 'VTI', 'XIU.TO', NULL])[k % 4 + 1],
       k % 23 <> 0,
       pg_temp.ts(pg_temp.bday(720), 12), pg_temp.ts(pg_temp.bday(k % 30), 12)
  FROM generate_series(1, __NPORT__) AS k""",
    # pricing packs (30 business days), securities (500), FX rates, prices
    """
INSERT INTO pricing_packs (id, date, policy, hash, superseded_by, sources_json, status, is_fresh,
                           prewarm_done, reconciliation_passed, reconciliation_failed,
                           reconciliation_error_bps, error_message, created_at, updated_at)
SELECT 'PP_' || to_char(pg_temp.bday(d), 'YYYY-MM-DD'), pg_temp.bday(d), 'WM4PM_CAD',
       'sha256:' || md5('pack-' || d), NULL,
       '{"FMP": true, "Polygon": true, "FRED": true}'::jsonb, 'fresh', true, true,
       true, false, round((d % 9) / 10.0 + 0.0123, 4), NULL,
       pg_temp.ts(pg_temp.bday(d), 21), pg_temp.ts(pg_temp.bday(d), 22)
  FROM generate_series(0, 29) AS d""",
    # the first run of the last day's pack failed reconciliation and was superseded by its re-run
    """
INSERT INTO pricing_packs (id, date, policy, hash, superseded_by, sources_json, status, is_fresh,
                           prewarm_done, reconciliation_passed, reconciliation_failed,
                           reconciliation_error_bps, error_message, created_at, updated_at)
VALUES ('PP_2025-10-31_r0', '2025-10-31', 'WM4PM_CAD', 'sha256:' || md5('pack-r0'), 'PP_2025-10-31',
        '{"FMP": true, "Polygon": false, "FRED": true}'::jsonb, 'error', false, true, false, true, 2.4817,
        'Polygon closes missing for 3 securities', pg_temp.ts('2025-10-31', 20), pg_temp.ts('2025-10-31', 21))""",
    """
INSERT INTO securities (id, symbol, name, security_type, exchange, trading_currency,
                        dividend_currency, domicile_country, active, created_at, updated_at)
SELECT md5('security-' || s)::uuid, 'SEC' || lpad(s::text, 4, '0'), 'Security ' || s || ' Holdings',
       (ARRAY['equity', 'equity', 'etf', 'bond'])[s % 4 + 1],
       (ARRAY['NASDAQ', 'NYSE', 'TSX', NULL])[s % 4 + 1],
       CASE WHEN s % 4 = 2 THEN 'CAD' ELSE 'USD' END,
       CASE WHEN s % 10 = 0 THEN 'CAD' END,
       CASE WHEN s % 4 = 2 THEN 'CA' ELSE 'US' END,
       s % 50 <> 0, pg_temp.ts('2023-01-02', 8), pg_temp.ts(pg_temp.bday(s % 30), 8)
  FROM generate_series(1, 500) AS s""",
    """
INSERT INTO fx_rates (id, pricing_pack_id, base_ccy, quote_ccy, asof_ts, rate, source, policy, created_at)
SELECT md5('fx-' || pair || '-' || d)::uuid, 'PP_' || to_char(pg_temp.bday(d), 'YYYY-MM-DD'),
       split_part(pair, '/', 1), split_part(pair, '/', 2), pg_temp.ts(pg_temp.bday(d), 16),
       CASE pair WHEN 'USD/CAD' THEN 1.35 + ((d * 7) % 40) / 1000.0 + 0.0000012345
                 ELSE 1.08 + ((d * 11) % 30) / 1000.0 + 0.0000054321 END,
       'fred', 'WM4PM', pg_temp.ts(pg_temp.bday(d), 21)
  FROM generate_series(0, 29) AS d, unnest(ARRAY['USD/CAD', 'EUR/USD']) AS pair""",
    """
INSERT INTO prices (id, security_id, pricing_pack_id, asof_date, close, open, high, low, volume,
                    currency, source, adjusted_for_splits, adjusted_for_dividends, created_at)
SELECT md5('price-' || s || '-' || d)::uuid, md5('security-' || s)::uuid,
       'PP_' || to_char(pg_temp.bday(d), 'YYYY-MM-DD'), pg_temp.bday(d),
       c, c * 0.995, c * 1.0125, c * 0.9875, 100000 + (s * 7919 + d * 104729) % 900000,
       CASE WHEN s % 4 = 2 THEN 'CAD' ELSE 'USD' END,
       CASE WHEN s % 2 = 0 THEN 'polygon' ELSE 'fmp' END, true, false,
       pg_temp.ts(pg_temp.bday(d), 21)
  FROM generate_series(1, 500) AS s, generate_series(0, 29) AS d,
       LATERAL (SELECT round(5 + (s * 13) % 400 + ((s + d * 3) % 17) * 0.35
                             + ((s * 7919 + d * 104729) % 100000000) / 1e8, 8) AS c) AS px""",
]

# the lot plan of one chunk: kind i % 5 = 0 closed (i % 10 = 0: by two SELLs), 1 partially
# sold, else open; one orphan per block of 200 at offset 100..109, rotating by block
LOT_PLAN = """
CREATE TEMP TABLE lot_plan ON COMMIT DROP AS
SELECT i,
       md5('lot-' || i)::uuid                                            AS lot_id,
       md5('portfolio-' || (((i - 1) / 50) % __NPORT__ + 1))::uuid       AS portfolio_id,
       orphan,
       CASE WHEN orphan THEN md5('orphan-sec-' || ((i - 1) / 400))::uuid
            ELSE md5('security-' || ((i * 7) % 500 + 1))::uuid END       AS security_id,
       CASE WHEN orphan THEN 'ZZ' || lpad(((i - 1) / 400)::text, 4, '0')
            ELSE 'SEC' || lpad(((i * 7) % 500 + 1)::text, 4, '0') END    AS symbol,
       CASE WHEN i % 4 = 0 THEN 'CAD' ELSE 'USD' END                     AS currency,
       d_acq,
       pg_temp.bday(d_acq)                                               AS acq_date,
       CASE WHEN i % 3 = 0 THEN ((i * 37) % 1000 + 1)::numeric
            ELSE round(((i * 37) % 1000 + 1) + ((i * 7919) % 100000000) / 1e8, 8) END AS base_qty,
       round(5 + (i * 13) % 400 + ((i * 104729) % 10000000) / 1e7, 7)    AS unit_cost,
       CASE WHEN i % 5 = 0 THEN 'closed' WHEN i % 5 = 1 THEN 'partial' ELSE 'open' END AS kind,
       (i % 97 = 0 AND i % 5 > 1)                                        AS split_2for1,
       (i * 3) % (d_acq / 2)                                             AS d_close,
       d_acq - 1 - (i % (d_acq / 2))                                     AS d_first,
       round(0.2 + (i % 50) / 100.0 + 0.0012345, 7)                      AS sold_fraction
  FROM generate_series(__LO__::bigint, __HI__) AS i,
       LATERAL (SELECT (i - 1) % 200 = 100 + ((i - 1) / 200) % 10 AS orphan,
                       30 + (i * 17) % 650 AS d_acq) AS x"""

LOTS = [
    """
INSERT INTO lots (id, portfolio_id, security_id, symbol, acquisition_date, quantity, cost_basis,
                  cost_basis_per_share, currency, is_open, created_at, updated_at,
                  qty_original, qty_open, closed_date)
SELECT lot_id, portfolio_id, security_id, symbol, acq_date,
       -- the app's SELL copies qty_open into quantity (half the partial lots); reduce_lot()
       -- and the split path leave it alone
       CASE WHEN kind = 'partial' AND i % 10 = 1 THEN base_qty - round(base_qty * sold_fraction, 8)
            ELSE base_qty END,
       base_qty * unit_cost,
       CASE WHEN split_2for1 THEN base_qty * unit_cost / (2 * base_qty) ELSE unit_cost END,
       currency,
       kind <> 'closed',
       pg_temp.ts(acq_date, 15),
       pg_temp.ts(CASE kind WHEN 'closed' THEN pg_temp.bday(d_close)
                            WHEN 'partial' THEN pg_temp.bday(d_first)
                            ELSE CASE WHEN split_2for1 THEN pg_temp.bday(d_acq / 2) ELSE acq_date END
                  END, 16),
       CASE WHEN split_2for1 THEN 2 * base_qty ELSE base_qty END,
       CASE kind WHEN 'closed' THEN 0
                 WHEN 'partial' THEN base_qty - round(base_qty * sold_fraction, 8)
                 ELSE CASE WHEN split_2for1 THEN 2 * base_qty ELSE base_qty END END,
       CASE WHEN kind = 'closed' THEN pg_temp.bday(d_close) END
  FROM lot_plan""",
    # a BUY per lot (the app never sets lot_id on a BUY)
    """
INSERT INTO transactions (id, portfolio_id, transaction_type, security_id, symbol, transaction_date,
                          settlement_date, quantity, price, amount, currency, fee, commission, lot_id,
                          narration, source, ledger_commit_hash, created_at, updated_at)
SELECT md5('txn-buy-' || i)::uuid, portfolio_id, 'BUY', security_id, symbol, acq_date, acq_date + 2,
       base_qty, unit_cost, -(base_qty * unit_cost) - (i % 5) * 0.995, currency,
       (i % 5) * 0.995, 0, NULL, CASE WHEN i % 9 = 0 THEN 'buy ' || symbol END,
       (ARRAY['manual', 'import', 'ledger'])[i % 3 + 1],
       CASE WHEN i % 3 = 2 THEN md5('commit-' || (i / 100)) END,
       pg_temp.ts(acq_date, 15), pg_temp.ts(acq_date, 15)
  FROM lot_plan""",
    # SELLs linked to their lot (about 1 in 97 left unlinked, as the app's own SELL path does)
    """
INSERT INTO transactions (id, portfolio_id, transaction_type, security_id, symbol, transaction_date,
                          settlement_date, quantity, price, amount, currency, fee, commission, lot_id,
                          narration, source, trade_fx_rate_id, created_at, updated_at)
SELECT md5('txn-' || leg || '-' || i)::uuid, portfolio_id, 'SELL', security_id, symbol, sell_date,
       sell_date + 2, q, px, q * px - 1.25, currency, 1.25, 0.0,
       CASE WHEN i % 97 = 5 THEN NULL ELSE lot_id END,
       NULL, 'manual',
       CASE WHEN currency = 'CAD' AND sell_d < 30 THEN md5('fx-USD/CAD-' || sell_d)::uuid END,
       pg_temp.ts(sell_date, 17), pg_temp.ts(sell_date, 17)
  FROM lot_plan,
       LATERAL (VALUES
           ('sell1', kind = 'closed' AND i % 10 <> 0, d_close, base_qty),
           ('sell1', kind = 'closed' AND i % 10 = 0, d_first, round(base_qty * 0.4, 8)),
           ('sell2', kind = 'closed' AND i % 10 = 0, d_close, base_qty - round(base_qty * 0.4, 8)),
           ('sell1', kind = 'partial', d_first, round(base_qty * sold_fraction, 8))
       ) AS s(leg, applies, sell_d, q),
       LATERAL (SELECT pg_temp.bday(sell_d) AS sell_date,
                       round(unit_cost * (1 + ((i % 41) - 15) / 100.0), 6) AS px) AS y
 WHERE applies""",
    # 2-for-1 splits (qty_original / qty_open doubled, quantity untouched)
    """
INSERT INTO transactions (id, portfolio_id, transaction_type, security_id, symbol, transaction_date,
                          quantity, price, amount, currency, narration, source, created_at, updated_at)
SELECT md5('txn-split-' || i)::uuid, portfolio_id, 'SPLIT', security_id, symbol,
       pg_temp.bday(d_acq / 2), base_qty, NULL, 0, currency, '2-for-1 split', 'manual',
       pg_temp.ts(pg_temp.bday(d_acq / 2), 16), pg_temp.ts(pg_temp.bday(d_acq / 2), 16)
  FROM lot_plan WHERE split_2for1""",
    # dividends on lots still held, paid inside the pricing window (pay-date FX for CAD)
    """
INSERT INTO transactions (id, portfolio_id, transaction_type, security_id, symbol, transaction_date,
                          quantity, price, amount, currency, narration, source, pay_date,
                          pay_fx_rate_id, ex_date, created_at, updated_at)
SELECT md5('txn-div-' || i)::uuid, portfolio_id, 'DIVIDEND', security_id, symbol, pay,
       base_qty, dps, base_qty * dps, currency, 'dividend ' || symbol, 'import', pay,
       CASE WHEN currency = 'CAD' THEN md5('fx-USD/CAD-' || (i % 30))::uuid END, pay - 3,
       pg_temp.ts(pay, 18), pg_temp.ts(pay, 18)
  FROM lot_plan,
       LATERAL (SELECT pg_temp.bday(i % 30) AS pay, round(0.1 + (i % 90) / 100.0 + 0.0012345, 7) AS dps) AS z
 WHERE i % 7 = 0 AND kind <> 'closed'""",
]

PORTFOLIO_LEVEL = [
    # monthly transfers in, quarterly fees, one transfer out per portfolio
    """
INSERT INTO transactions (id, portfolio_id, transaction_type, security_id, symbol, transaction_date,
                          quantity, price, amount, currency, narration, source, created_at, updated_at)
SELECT md5('txn-' || t || '-' || k || '-' || m)::uuid, md5('portfolio-' || k)::uuid, t, NULL, NULL,
       dt, NULL, NULL,
       CASE t WHEN 'TRANSFER_IN' THEN 10000 + k * 123.4567891 + m
              WHEN 'FEE' THEN -(25 + k % 7 + 0.123456789)
              ELSE -(5000 + k * 3.3333333) END,
       CASE WHEN k % 2 = 0 THEN 'CAD' ELSE 'USD' END, lower(t), 'manual',
       pg_temp.ts(dt, 11), pg_temp.ts(dt, 11)
  FROM generate_series(1, __NPORT__) AS k,
       LATERAL (SELECT 'TRANSFER_IN' AS t, m, (date '2024-11-03' + make_interval(months => m))::date AS dt
                  FROM generate_series(0, 11) AS m
                UNION ALL
                SELECT 'FEE', m, (date '2024-12-31' + make_interval(months => 3 * m))::date
                  FROM generate_series(0, 3) AS m
                UNION ALL
                SELECT 'TRANSFER_OUT', 0, date '2025-06-16') AS w""",
    # cash flows: one per DIVIDEND / FEE / TRANSFER transaction (amount rounded to cents), and
    # manual ones (transaction_id NULL; duplicate (portfolio, date, type) rows allowed)
    """
INSERT INTO portfolio_cash_flows (id, portfolio_id, flow_date, flow_type, amount, currency,
                                  transaction_id, description, created_at)
SELECT md5('cf-' || t.id)::uuid, t.portfolio_id, t.transaction_date,
       CASE t.transaction_type WHEN 'DIVIDEND' THEN 'DIVIDEND' WHEN 'FEE' THEN 'FEE'
                               WHEN 'TRANSFER_IN' THEN 'DEPOSIT' ELSE 'WITHDRAWAL' END,
       t.amount, t.currency, t.id, NULL, pg_temp.ts(t.transaction_date, 23)
  FROM transactions AS t
 WHERE t.transaction_type IN ('DIVIDEND', 'FEE', 'TRANSFER_IN', 'TRANSFER_OUT')""",
    """
INSERT INTO portfolio_cash_flows (id, portfolio_id, flow_date, flow_type, amount, currency,
                                  transaction_id, description, created_at)
SELECT md5('cf-manual-' || k || '-' || n)::uuid, md5('portfolio-' || k)::uuid,
       CASE WHEN n = 3 AND k % 2 = 0 THEN date '2025-01-15' + 40 ELSE date '2025-01-15' + n * 40 END,
       CASE WHEN n = 2 THEN 'INTEREST' ELSE 'DEPOSIT' END,
       round(1000 + k * 10.5 + n, 2), 'CAD', NULL, 'manual entry', pg_temp.ts('2025-01-15', 9)
  FROM generate_series(1, __NPORT__) AS k, generate_series(1, 3) AS n""",
    # analytics keyed by (portfolio, asof_date, pack)
    """
INSERT INTO portfolio_metrics (portfolio_id, asof_date, pricing_pack_id, twr_1d, twr_1d_base,
       twr_mtd, twr_qtd, twr_ytd, twr_1y, twr_3y_ann, twr_5y_ann, twr_inception_ann, mwr_ytd, mwr_1y,
       mwr_3y_ann, mwr_inception_ann, volatility_30d, volatility_60d, volatility_90d, volatility_1y,
       sharpe_30d, sharpe_60d, sharpe_90d, sharpe_1y, max_drawdown_1y, max_drawdown_3y,
       current_drawdown, alpha_1y, alpha_3y_ann, beta_1y, beta_3y, tracking_error_1y,
       information_ratio_1y, win_rate_1y, avg_win, avg_loss, portfolio_value_base,
       portfolio_value_local, cash_balance, base_currency, benchmark_id, reconciliation_error_bps,
       created_at)
SELECT md5('portfolio-' || k)::uuid, pg_temp.bday(d), 'PP_' || to_char(pg_temp.bday(d), 'YYYY-MM-DD'),
       r, r, r * 5, r * 12, r * 40, r * 50, r * 30, r * 28, r * 25, r * 38, r * 47, r * 29, r * 24,
       v, v * 1.02, v * 1.05, v * 1.1, r * 90, r * 88, r * 85, r * 80,
       -v * 1.3, -v * 1.9, -v * 0.2, r * 3, r * 2.5, 0.9 + (k % 20) / 100.0, 0.95, v / 4, r * 7,
       round(0.5 + (k % 40) / 100.0, 4), r * 2, -r * 1.5,
       round(1000000 + k * 12345.678 + d * 101.01, 2), round(990000 + k * 12000.5, 2),
       round(25000 + k * 10.01, 2), CASE WHEN k % 2 = 0 THEN 'CAD' ELSE 'USD' END,
       (ARRAY['SPY', 'VTI', 'XIU.TO', NULL])[k % 4 + 1], round((k + d) % 9 / 10.0, 4),
       pg_temp.ts(pg_temp.bday(d), 22)
  FROM generate_series(1, __NPORT__) AS k, generate_series(0, 29) AS d,
       LATERAL (SELECT round((((k * 31 + d * 17) % 200) - 100) / 100000.0 + 0.00000123, 8) AS r,
                       round(0.1 + ((k * 7 + d) % 50) / 1000.0 + 0.00000077, 8) AS v) AS m""",
    """
INSERT INTO currency_attribution (portfolio_id, asof_date, pricing_pack_id, local_return, fx_return,
       interaction_return, total_return, base_return_actual, error_bps, attribution_by_currency,
       base_currency, created_at)
SELECT md5('portfolio-' || k)::uuid, pg_temp.bday(d), 'PP_' || to_char(pg_temp.bday(d), 'YYYY-MM-DD'),
       l, f, round(l * f, 8), round(l + f + l * f, 8), round(l + f + l * f, 8), 0.0421,
       jsonb_build_object('USD', jsonb_build_object('local', l, 'fx', f)),
       CASE WHEN k % 2 = 0 THEN 'CAD' ELSE 'USD' END, pg_temp.ts(pg_temp.bday(d), 22)
  FROM generate_series(1, __NPORT__) AS k, generate_series(0, 4) AS d,
       LATERAL (SELECT round(((k + d) % 30 - 15) / 10000.0 + 0.00000011, 8) AS l,
                       round(((k * 3 + d) % 10 - 5) / 10000.0 + 0.00000013, 8) AS f) AS a""",
    """
INSERT INTO factor_exposures (portfolio_id, asof_date, pricing_pack_id, beta_real_rate, beta_inflation,
       beta_credit, beta_fx, beta_market, beta_size, beta_value, beta_momentum, var_factor,
       var_idiosyncratic, r_squared, factor_contributions, estimation_window_days, benchmark_id, created_at)
SELECT md5('portfolio-' || k)::uuid, pg_temp.bday(d), 'PP_' || to_char(pg_temp.bday(d), 'YYYY-MM-DD'),
       0.35, -0.12, 0.08, -0.2, 0.85 + k % 10 / 100.0, 0.1, -0.05, 0.02, 0.0123, 0.0045,
       0.72, '{"real_rate": 0.002}'::jsonb, 252, 'SPY', pg_temp.ts(pg_temp.bday(d), 22)
  FROM generate_series(1, __NPORT__) AS k, generate_series(0, 4) AS d""",
    """
INSERT INTO portfolio_daily_values (portfolio_id, valuation_date, total_value, cash_balance,
                                    positions_value, cash_flows, currency, computed_at)
SELECT md5('portfolio-' || k)::uuid, pg_temp.bday(d),
       round(1000000 + k * 12345.678 + d * 101.01, 2), round(25000 + k * 10.01, 2),
       round(975000 + k * 12335.668 + d * 101.01, 2), 0, CASE WHEN k % 2 = 0 THEN 'CAD' ELSE 'USD' END,
       pg_temp.ts(pg_temp.bday(d), 23)
  FROM generate_series(1, __NPORT__) AS k, generate_series(0, 29) AS d""",
    """
INSERT INTO dar_history (id, portfolio_id, user_id, asof_date, regime, confidence, horizon_days,
       num_simulations, dar, dar_pct, mean_drawdown, median_drawdown, max_drawdown, current_nav,
       pricing_pack_id, created_at)
SELECT md5('dar-' || k)::uuid, md5('portfolio-' || k)::uuid, md5('user-' || ((k - 1) % __NUSERS__ + 1))::uuid,
       date '2025-10-31', 'MID_EXPANSION', 0.95, 30, 10000, 52345.678912, 0.0523456789, 0.031,
       0.029, 0.18, 1000000 + k, 'PP_2025-10-31', pg_temp.ts('2025-10-31', 23)
  FROM generate_series(1, __NPORT__) AS k""",
    """
INSERT INTO scenario_results (id, portfolio_id, user_id, shock_type, asof_date, total_delta_pnl,
       total_delta_pnl_pct, winners_json, losers_json, pricing_pack_id, created_at)
SELECT md5('scn-' || k || '-' || st)::uuid, md5('portfolio-' || k)::uuid,
       md5('user-' || ((k - 1) % __NUSERS__ + 1))::uuid, st, date '2025-10-31',
       -1234.5678901 * (k % 5 + 1), -0.0012345678, '[]'::jsonb, '[]'::jsonb, 'PP_2025-10-31',
       pg_temp.ts('2025-10-31', 23)
  FROM generate_series(1, __NPORT__) AS k, unnest(ARRAY['rates_up', 'usd_down', 'equity_selloff']) AS st""",
    # factor betas of every (portfolio, security) a portfolio holds lots of
    """
INSERT INTO position_factor_betas (portfolio_id, security_id, factor_name, beta, updated_at)
SELECT h.portfolio_id, h.security_id, f.name,
       round(f.base + (('x' || substr(md5(h.portfolio_id::text || h.security_id::text || f.name), 1, 6))::bit(24)::int % 81 - 40) / 100.0, 4),
       pg_temp.ts('2025-10-31', 20)
  FROM (SELECT DISTINCT l.portfolio_id, l.security_id FROM lots AS l
          JOIN securities AS s ON s.id = l.security_id) AS h,
       (VALUES ('equity_market', 1.0), ('real_rates', -0.3), ('credit_spreads', 0.4),
               ('fx_usd', -0.2)) AS f(name, base)""",
    # auth side tables
    """
INSERT INTO audit_log (id, user_id, action, resource_type, resource_id, details, "timestamp",
                       ip_address, user_agent)
SELECT md5('audit-' || u || '-' || n)::uuid, md5('user-' || u)::uuid,
       (ARRAY['login', 'view_portfolio', 'execute_trade'])[n], 'portfolio',
       md5('portfolio-' || u)::text, jsonb_build_object('n', n), pg_temp.ts(pg_temp.bday(n), 12),
       '10.0.0.' || (u % 250), 'demo-agent'
  FROM generate_series(1, __NUSERS__) AS u, generate_series(1, 3) AS n""",
    """
INSERT INTO refresh_tokens (id, user_id, token_hash, expires_at, created_at, revoked_at)
SELECT md5('rt-' || u)::uuid, md5('user-' || u)::uuid, md5('refresh-' || u),
       pg_temp.ts('2025-11-30', 0), pg_temp.ts('2025-10-31', 0),
       CASE WHEN u % 4 = 0 THEN pg_temp.ts('2025-10-31', 1) END
  FROM generate_series(1, __NUSERS__) AS u""",
    """
INSERT INTO token_blacklist (id, token_jti, user_id, expires_at, created_at)
SELECT md5('jti-' || u)::uuid, 'jti-' || u, md5('user-' || u)::uuid,
       pg_temp.ts('2025-11-01', 0), pg_temp.ts('2025-10-31', 2)
  FROM generate_series(1, __NUSERS__) AS u WHERE u % 2 = 0""",
]


def _macro_statement() -> str:
    rows = ", ".join(f"({k}, '{sid}', '{name}', '{units}', {base}, {drift})"
                     for k, (sid, name, units, base, drift) in enumerate(MACRO_SERIES, 1))
    return f"""
INSERT INTO macro_indicators (id, indicator_id, indicator_name, date, value, units, frequency,
                              source, last_updated, created_at)
SELECT md5('macro-' || m.sid || '-' || w)::uuid, m.sid, m.name, date '2025-10-31' - w * 7,
       round(m.base * (1 + m.drift * ({MACRO_WEEKS} - w) / 10.0 + ((w * 7 + m.k * 3) % 11 - 5) * 0.001)
             + ((w * 7919 + m.k) % 1000) / 1e7, 7),
       m.units, 'weekly', 'FRED', pg_temp.ts(date '2025-10-31' - w * 7, 6),
       pg_temp.ts(date '2025-10-31' - w * 7, 6)
  FROM (VALUES {rows}) AS m(k, sid, name, units, base, drift),
       generate_series(0, {MACRO_WEEKS - 1}) AS w"""


def _scenario_statement() -> str:
    # each scenario moves every factor: the base move scaled per factor
    scales = ("1.0", "0.5", "0.8", "0.3")
    rows = ", ".join(f"('{n}', '{c}', {b}, '{d}')" for n, c, b, d in SCENARIOS)
    shocks = ", ".join(f"'{f}', round(v.base * {s}, 6)" for f, s in zip(FACTORS, scales))
    return f"""
INSERT INTO scenario_shocks (scenario_id, scenario_name, shock_definition, created_at)
SELECT md5('scenario-' || v.name)::uuid, v.name,
       jsonb_build_object('description', v.descr, 'category', v.category,
                          'shocks', jsonb_build_object({shocks})),
       pg_temp.ts('2025-01-02', 9)
  FROM (VALUES {rows}) AS v(name, category, base, descr)"""


def portfolio_count(rows: int) -> int:
    return max(5, rows // 2000)


def user_count(rows: int) -> int:
    return max(3, portfolio_count(rows) // 2)


def _fill(stmt: str, rows: int, lo: int = 0, hi: int = 0) -> str:
    return (stmt.replace("__NPORT__", str(portfolio_count(rows)))
            .replace("__NUSERS__", str(user_count(rows)))
            .replace("__LO__", str(lo)).replace("__HI__", str(hi)).strip())


def statements(rows: int) -> list[list[str]]:
    """The seed as transactions (lists of statements), in order."""
    if rows < 200:
        raise ValueError("rows must be at least 200")
    out = [[_fill(s, rows) for s in REFERENCE]]
    for lo in range(1, rows + 1, CHUNK):
        hi = min(rows, lo + CHUNK - 1)
        out.append([_fill(LOT_PLAN, rows, lo, hi)] + [_fill(s, rows) for s in LOTS])
    out.append([_fill(s, rows) for s in PORTFOLIO_LEVEL] + [_macro_statement(), _scenario_statement()])
    return out


def seed(conninfo: str, rows: int = 10_000) -> dict:
    """Seed an empty, schema-loaded database as its owner; returns {table: row count}."""
    with psycopg.connect(conninfo, autocommit=True) as conn:   # one transaction per step
        conn.execute(HELPERS)
        if rows >= CHUNK:
            # bulk load: skip the per-row FK and updated_at triggers (the data satisfies the
            # constraints by construction). Needs superuser; keeps them otherwise.
            try:
                conn.execute("SET session_replication_role = replica")
            except psycopg.Error:
                pass
        for transaction in statements(rows):
            with conn.transaction():
                for stmt in transaction:
                    conn.execute(stmt)
        conn.execute("ANALYZE")
        counts = {}
        for table in TABLES:
            q = _sql.SQL("SELECT count(*) FROM {}").format(_sql.Identifier(table))
            counts[table] = conn.execute(q).fetchone()[0]
    return counts


def table_checksum(conn, table: str) -> str:
    """Order-independent checksum of every row of `table`: '<count>:<sum of md5 prefixes>'.

    Each row's text form is hashed; the first 15 hex digits (60 bits) become a bigint and
    are summed (sum(bigint) is numeric, so 10M rows cannot overflow)."""
    q = _sql.SQL(
        "SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint), 0) "
        "FROM {} AS t"
    ).format(_sql.Identifier(table))
    count, total = conn.execute(q).fetchone()
    return f"{count}:{total}"
