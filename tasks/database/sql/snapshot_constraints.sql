-- Catalog snapshot (constraints) of schema public: (name, definition) rows, compared by the
-- schema-defined-once gate.
SELECT c.relname || '.' || k.conname, k.contype::text || ' ' || pg_get_constraintdef(k.oid)
  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
 WHERE c.relnamespace = 'public'::regnamespace
