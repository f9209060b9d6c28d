"""The cached integer path of PricingTable.cost gives the very cost of the general path."""

from __future__ import annotations

import pytest

from aispend.pricing import table
from aispend.pricing.table import PricingTable


class _NoCache(dict):
    """An integer-rate cache that never holds anything: every cost takes the general path."""

    def __getitem__(self, key):
        return None


TOKENS = [
    (0, 0, 0, 0, 0),
    (3, 1, 0, 0, 0),
    (1_234, 567, 8_901, 0, 123_456),
    (10, 2_000, 150_000, 60_000, 0),  # over 200k of input: long context where the model has it
    (199_999, 1, 0, 0, 1),  # exactly 200,000: not over
    (7, 8, 9, 10, 250_000),
]


@pytest.mark.parametrize("model", sorted(table.bundled().models))
def test_integer_path_equals_general_path_for_every_shipped_model(model: str) -> None:
    fast = table.bundled()
    general = table.bundled()
    general._int_cache = _NoCache()
    for tokens in TOKENS:
        a = fast.cost(model, *tokens)
        b = general.cost(model, *tokens)
        assert a == b, (model, tokens)


def test_most_models_take_the_integer_path() -> None:
    t = table.bundled()
    for model in t.models:
        t.cost(model, 1, 1)
    taken = sum(1 for v in t._int_cache.values() if v is not None)
    assert taken >= 0.9 * len(t.models)
    assert t._int_cache["claude-sonnet-4-5"] is not None and t._int_cache["gpt-5"] is not None


def test_integer_path_covers_lookup_variants_and_unknown_models() -> None:
    fast = table.bundled()
    general = table.bundled()
    general._int_cache = _NoCache()
    for model in ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5@20250929", "anthropic/claude-opus-4-6", "no-such-model"):
        for tokens in TOKENS:
            assert fast.cost(model, *tokens) == general.cost(model, *tokens)
    assert fast.cost("no-such-model", 1, 1).nusd is None
    # A long-context request on a model with above-200k prices is marked so, on both paths.
    assert fast.cost("claude-sonnet-4-5", 10, 2_000, 150_000, 60_000, 0).note == "long_context"


def test_fast_mode_never_takes_the_integer_path() -> None:
    t = PricingTable(table.bundled().snapshot)
    c = t.cost("claude-opus-4-6", 1000, 1000, speed="fast")
    g = PricingTable(table.bundled().snapshot)
    g._int_cache = _NoCache()
    assert c == g.cost("claude-opus-4-6", 1000, 1000, speed="fast")
    assert c.note is not None and "fast" in c.note
