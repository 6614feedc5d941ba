-- Migration 014 exactly as the refactoring plan's Task 1.1 describes it, for the benchmark's
-- baseline (bench/migration_stall.py): one transaction that adds the columns, copies the data,
-- sets NOT NULL, adds the index and the constraints. ADD COLUMN takes ACCESS EXCLUSIVE on lots
-- and keeps it until COMMIT, so every write to lots waits for the whole file.
-- Like the runbook's 014 (expand phase) it keeps the old columns and their index.
BEGIN;

-- 2. Add new standardized columns
ALTER TABLE lots ADD COLUMN quantity_open numeric(20, 6);
ALTER TABLE lots ADD COLUMN quantity_original numeric(20, 6);

-- 3. Copy data from old columns
UPDATE lots SET quantity_open = qty_open, quantity_original = qty_original;

-- 4. Set NOT NULL constraints
ALTER TABLE lots ALTER COLUMN quantity_open SET NOT NULL;
ALTER TABLE lots ALTER COLUMN quantity_original SET NOT NULL;

-- 5. Update indexes (the open-lots partial index, on the new column)
CREATE INDEX idx_lots_open_quantity ON lots (portfolio_id) WHERE quantity_open > 0;

-- 6. Update constraints (the old columns' CHECKs, on the new columns)
ALTER TABLE lots ADD CONSTRAINT lots_quantity_open_nonneg CHECK (quantity_open >= 0);
ALTER TABLE lots ADD CONSTRAINT lots_quantity_open_le_original CHECK (quantity_open <= quantity_original);

COMMIT;
