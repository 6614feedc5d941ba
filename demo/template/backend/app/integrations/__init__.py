"""HTTP clients of the external data providers (base URLs come from the environment)."""
