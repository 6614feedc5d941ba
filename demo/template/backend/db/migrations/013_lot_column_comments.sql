-- 013: document the lot quantity columns for the data dictionary.
COMMENT ON COLUMN lots.quantity IS 'Shares bought; must stay > 0, also for closed lots';
COMMENT ON COLUMN lots.qty_original IS 'Shares when the lot was opened';
COMMENT ON COLUMN lots.qty_open IS 'Shares still open; reduce_lot() lowers it and closes the lot at 0';
COMMENT ON COLUMN lots.closed_date IS 'Day qty_open reached 0';
