"""The runbook's migration triads (package data, read by runbook.tasks.database.migration_files)."""
