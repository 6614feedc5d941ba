-- 007: track each lot's original and still-open quantity, and when it closed.
--   qty_original  shares when the lot was opened
--   qty_open      shares not yet sold (0 = closed)
--   closed_date   the day qty_open reached 0
-- quantity stays as it was (its CHECK > 0 forbids 0, so it cannot say "closed").
-- Applied as one transaction.

ALTER TABLE lots ADD COLUMN qty_original numeric;
ALTER TABLE lots ADD COLUMN qty_open numeric;
ALTER TABLE lots ADD COLUMN closed_date date;

UPDATE lots SET qty_original = quantity,
                qty_open = CASE WHEN is_open IS FALSE THEN 0 ELSE quantity END,
                closed_date = CASE WHEN is_open IS FALSE THEN updated_at::date END;

ALTER TABLE lots ALTER COLUMN qty_original SET NOT NULL;
ALTER TABLE lots ALTER COLUMN qty_open SET NOT NULL;
ALTER TABLE lots ADD CONSTRAINT lots_qty_original_positive CHECK (qty_original > 0);
ALTER TABLE lots ADD CONSTRAINT lots_qty_open_nonnegative CHECK (qty_open >= 0);
ALTER TABLE lots ADD CONSTRAINT lots_qty_open_lte_original CHECK (qty_open <= qty_original);

-- open lots are found by qty_open now; is_open stays for old readers
DROP INDEX IF EXISTS idx_lots_is_open;
CREATE INDEX idx_lots_qty_open ON lots (qty_open) WHERE qty_open > 0;
CREATE INDEX idx_lots_closed_date ON lots (closed_date) WHERE closed_date IS NOT NULL;

-- reduce_lot(lot, qty, date): take qty shares off a lot's open quantity; at 0 the lot is
-- closed on that date. Raises when the lot is not visible or qty exceeds what is open.
-- Returns qty.
CREATE FUNCTION reduce_lot(p_lot_id uuid, p_qty_to_reduce numeric, p_disposition_date date)
RETURNS numeric
LANGUAGE plpgsql
AS $body$
DECLARE
    open_now numeric;
BEGIN
    SELECT l.qty_open INTO open_now FROM lots AS l WHERE l.id = p_lot_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'reduce_lot: no lot with id %', p_lot_id;
    END IF;
    IF p_qty_to_reduce > open_now THEN
        RAISE EXCEPTION 'reduce_lot: asked for % but lot % has only % open',
            p_qty_to_reduce, p_lot_id, open_now;
    END IF;

    UPDATE lots AS l
       SET qty_open    = l.qty_open - p_qty_to_reduce,
           closed_date = CASE WHEN l.qty_open - p_qty_to_reduce = 0 THEN p_disposition_date END,
           is_open     = (l.qty_open - p_qty_to_reduce <> 0),
           updated_at  = now()
     WHERE l.id = p_lot_id;

    RETURN p_qty_to_reduce;
END
$body$;
