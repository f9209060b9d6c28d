"""The local SQLite index: schema, incremental ingest, re-pricing."""
