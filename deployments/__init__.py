"""How the runbook's flows are served to a Prefect server: which flows, their names, tags,
descriptions and schedules (catalog), settings (schedules), building (build) and serving (serve)."""
