"""Policy: budgets, alerts and the .aispend.toml that sets them (docs/budgets.md)."""
