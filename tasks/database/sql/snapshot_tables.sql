-- Catalog snapshot (tables) of schema public: (name, definition) rows, compared by the
-- schema-defined-once gate.
SELECT c.relname FROM pg_class c
 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
