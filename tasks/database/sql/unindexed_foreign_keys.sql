-- Foreign keys in schema %(schema)s without a valid, non-partial index whose leading columns
-- are exactly the FK's columns (in any order): one row per such FK.
SELECT rel.relname AS table_name,
       con.conname AS constraint_name,
       (SELECT array_agg(a.attname::text ORDER BY k.ord)
          FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
          JOIN pg_catalog.pg_attribute AS a
            ON a.attrelid = con.conrelid AND a.attnum = k.attnum) AS columns,
       con.confrelid::regclass::text AS parent_table
  FROM pg_catalog.pg_constraint AS con
  JOIN pg_catalog.pg_class AS rel ON rel.oid = con.conrelid
  JOIN pg_catalog.pg_namespace AS ns ON ns.oid = rel.relnamespace
 WHERE con.contype = 'f' AND ns.nspname = %(schema)s
   AND NOT EXISTS (
         SELECT 1 FROM pg_catalog.pg_index AS i
          WHERE i.indrelid = con.conrelid AND i.indisvalid AND i.indpred IS NULL
            AND (string_to_array(i.indkey::text, ' ')::int2[])[1:cardinality(con.conkey)] @> con.conkey
            AND (string_to_array(i.indkey::text, ' ')::int2[])[1:cardinality(con.conkey)] <@ con.conkey)
 ORDER BY 1, 2
