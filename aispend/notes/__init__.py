"""Notes: receipts stored in ``refs/notes/aispend``, one per line; reading, writing, carrying."""
