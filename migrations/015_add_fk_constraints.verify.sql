-- 015 verify: each check is one query returning a single boolean; all must be true.
-- (The orphan scans themselves are the GX gates of the flow: one scan per table.)

-- runbook:check lots.security_id and transactions.security_id have validated FKs to securities
SELECT count(*) = 2 FROM pg_constraint
 WHERE contype = 'f' AND convalidated
   AND confrelid = to_regclass('securities')
   AND (conrelid, conname) IN (('lots'::regclass, 'lots_security_id_fkey'),
                               ('transactions'::regclass, 'transactions_security_id_fkey'));

-- runbook:check the quarantine tables exist
SELECT to_regclass('quarantine.lots') IS NOT NULL AND to_regclass('quarantine.transactions') IS NOT NULL;

-- runbook:check every quarantined row says why it was moved, by which migration
SELECT NOT EXISTS (SELECT 1 FROM quarantine.lots WHERE reason = '' OR migration_id = '')
   AND NOT EXISTS (SELECT 1 FROM quarantine.transactions WHERE reason = '' OR migration_id = '');

-- runbook:check no quarantined row is also still in its table (moved, not copied)
SELECT NOT EXISTS (SELECT 1 FROM quarantine.lots q JOIN lots l ON l.id = q.id)
   AND NOT EXISTS (SELECT 1 FROM quarantine.transactions q JOIN transactions t ON t.id = q.id);
