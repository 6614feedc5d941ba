-- 007: track the original and the still-open quantity of every tax lot.
--   qty_original  quantity when the lot was opened
--   qty_open      quantity not yet sold (0 = closed)
--   closed_date   day qty_open reached 0
-- Re-runnable: every step is guarded.

ALTER TABLE lots ADD COLUMN IF NOT EXISTS qty_original numeric(20,6);
ALTER TABLE lots ADD COLUMN IF NOT EXISTS qty_open     numeric(20,6);
ALTER TABLE lots ADD COLUMN IF NOT EXISTS closed_date  date;

UPDATE lots SET qty_original = quantity WHERE qty_original IS NULL;
UPDATE lots SET qty_open = quantity WHERE qty_open IS NULL;

ALTER TABLE lots ALTER COLUMN qty_original SET NOT NULL;
ALTER TABLE lots ALTER COLUMN qty_open SET NOT NULL;

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conname = 'lots_qty_open_nonneg' AND conrelid = 'lots'::regclass) THEN
        ALTER TABLE lots ADD CONSTRAINT lots_qty_open_nonneg CHECK (qty_open >= 0);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conname = 'lots_qty_open_le_original' AND conrelid = 'lots'::regclass) THEN
        ALTER TABLE lots ADD CONSTRAINT lots_qty_open_le_original CHECK (qty_open <= qty_original);
    END IF;
END
$$;

-- Open lots of a portfolio are the hot path of every holdings query.
CREATE INDEX IF NOT EXISTS idx_lots_open ON lots (portfolio_id) WHERE qty_open > 0;

-- Reduce a lot by p_qty; returns the remaining open quantity.
CREATE OR REPLACE FUNCTION reduce_lot(p_lot_id uuid, p_qty numeric)
RETURNS numeric
LANGUAGE plpgsql
AS $$
DECLARE
    v_open numeric;
BEGIN
    SELECT qty_open INTO v_open FROM lots WHERE id = p_lot_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'lot % not found', p_lot_id;
    END IF;
    IF p_qty <= 0 OR p_qty > v_open THEN
        RAISE EXCEPTION 'cannot reduce lot % by % (open %)', p_lot_id, p_qty, v_open;
    END IF;
    UPDATE lots
       SET qty_open = qty_open - p_qty,
           closed_date = CASE WHEN qty_open - p_qty = 0 THEN CURRENT_DATE ELSE closed_date END
     WHERE id = p_lot_id
    RETURNING qty_open INTO v_open;
    RETURN v_open;
END
$$;

CREATE OR REPLACE VIEW v_open_lots AS
    SELECT id, portfolio_id, security_id, qty_open, qty_original
      FROM lots
     WHERE qty_open > 0;

INSERT INTO schema_migrations (version) VALUES ('007') ON CONFLICT (version) DO NOTHING;
