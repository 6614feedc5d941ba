-- 013: document the lot quantity columns for the data dictionary.
COMMENT ON COLUMN lots.qty_original IS 'Quantity when the lot was opened';
COMMENT ON COLUMN lots.qty_open IS 'Quantity still open; 0 once the lot is fully closed';
COMMENT ON COLUMN lots.closed_date IS 'Day qty_open reached 0';
INSERT INTO schema_migrations (version) VALUES ('013') ON CONFLICT (version) DO NOTHING;
