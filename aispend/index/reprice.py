"""Price every stored request again with another table (after ``pricing update``)."""

from __future__ import annotations

import sqlite3

from aispend.index.db import transaction
from aispend.pricing.table import PricingTable


def reprice(conn: sqlite3.Connection, pricing: PricingTable) -> tuple[int, int]:
    """Recompute costs of requests priced from a table; return (repriced, still unpriced).

    Costs written by the agent itself (``costUSD``) are kept as they are.
    """
    rows = conn.execute(
        "SELECT key, model, input_tokens, output_tokens, cache_write_5m, cache_write_1h, cache_read_tokens, speed "
        "FROM requests WHERE pricing_id IS NULL OR pricing_id != 'log:costUSD'"
    ).fetchall()
    updates = []
    unpriced = 0
    for key, model, inp, out, w5, w1, rd, speed in rows:
        c = pricing.cost(model, inp, out, w5, w1, rd, speed)
        if c.nusd is None:
            unpriced += 1
        updates.append((c.nusd, c.priced_model, pricing.id if c.nusd is not None else None, c.note, key))
    with transaction(conn):
        conn.executemany(
            "UPDATE requests SET cost_nusd = ?, priced_model = ?, pricing_id = ?, price_note = ? WHERE key = ?", updates
        )
    return len(updates), unpriced
