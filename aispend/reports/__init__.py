"""Reports over the index: usage tables, JSON and CSV."""
