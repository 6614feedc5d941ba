-- 008: dividends with a pay date and the FX rates used on trade and pay dates.
ALTER TABLE transactions ADD COLUMN pay_date date;
ALTER TABLE transactions ADD COLUMN pay_fx_rate_id uuid REFERENCES fx_rates (id);
ALTER TABLE transactions ADD COLUMN ex_date date;
ALTER TABLE transactions ADD COLUMN trade_fx_rate_id uuid REFERENCES fx_rates (id);

-- get_fx_rate(date, base, quote, pack): 1 for the same currency; else the pack's rate that
-- day, else the inverse of the reverse pair; raises when neither exists.
CREATE FUNCTION get_fx_rate(p_asof_date date, p_base_currency text, p_quote_currency text,
                            p_pricing_pack_id text DEFAULT 'PP_2025-10-21')
RETURNS numeric
LANGUAGE plpgsql
AS $body$
DECLARE
    r numeric;
BEGIN
    IF p_base_currency = p_quote_currency THEN
        RETURN 1.0;
    END IF;
    SELECT f.rate INTO r FROM fx_rates AS f
     WHERE f.pricing_pack_id = p_pricing_pack_id AND f.asof_ts::date = p_asof_date
       AND f.base_ccy = p_base_currency AND f.quote_ccy = p_quote_currency
     LIMIT 1;
    IF r IS NULL THEN
        SELECT 1.0 / f.rate INTO r FROM fx_rates AS f
         WHERE f.pricing_pack_id = p_pricing_pack_id AND f.asof_ts::date = p_asof_date
           AND f.base_ccy = p_quote_currency AND f.quote_ccy = p_base_currency
         LIMIT 1;
    END IF;
    IF r IS NULL THEN
        RAISE EXCEPTION 'get_fx_rate: no %/% rate on % in pack %',
            p_base_currency, p_quote_currency, p_asof_date, p_pricing_pack_id;
    END IF;
    RETURN r;
END
$body$;
