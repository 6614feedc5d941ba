"""Services: database access and calculations used by the agents."""
