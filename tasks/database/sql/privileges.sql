-- What the runbook's role lacks on the target database, one row per missing grant:
-- (grant, why it is needed, a few of the objects concerned). Empty for a superuser.
WITH me AS (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
app_objects AS (   -- what the plan days alter: relations and functions of the app's schemas
    SELECT n.nspname || '.' || c.relname AS name, c.relowner AS owner
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S')
       AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'runbook') AND n.nspname NOT LIKE 'pg_%'
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
    UNION ALL
    SELECT p.oid::regprocedure::text, p.proowner
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'runbook') AND n.nspname NOT LIKE 'pg_%'
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
),
not_owned AS (
    SELECT name FROM app_objects WHERE NOT pg_has_role(current_user, owner, 'USAGE') ORDER BY name
)
SELECT grant_name, why, objects FROM (
    SELECT 'ownership of the app''s tables and functions' AS grant_name,
           'ALTER TABLE, triggers and CREATE OR REPLACE FUNCTION need the owner' AS why,
           (SELECT string_agg(name, ', ') FROM (SELECT name FROM not_owned LIMIT 5) s)
             || CASE WHEN (SELECT count(*) FROM not_owned) > 5
                     THEN format(' (+%s more)', (SELECT count(*) FROM not_owned) - 5) ELSE '' END AS objects
     WHERE EXISTS (SELECT 1 FROM not_owned)
    UNION ALL
    SELECT 'membership in pg_read_all_stats',
           'the long-transaction preflight must see every session''s transaction', NULL
     WHERE NOT pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')
    UNION ALL
    SELECT format('CREATE on database %I', current_database()),
           'the runbook keeps its ledger in its own schema there', NULL
     WHERE NOT has_database_privilege(current_database(), 'CREATE')
       AND NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'runbook'
                          AND pg_has_role(current_user, nspowner, 'USAGE'))
) missing
WHERE NOT (SELECT rolsuper FROM me);
