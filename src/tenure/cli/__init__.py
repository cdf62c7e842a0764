"""The `tenure` command: a thin shell over the services."""
