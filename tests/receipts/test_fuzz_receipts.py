"""Property tests: the receipt parser and verifier never crash, and no mutation verifies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aispend.attribution import Claimed
from aispend.notes.store import parse_note
from aispend.receipts import keys, model, signing, verify

COMMIT, TREE = "a" * 40, "b" * 40

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


def _valid(tmp: Path) -> dict[str, Any]:
    key = keys.create_key(tmp / "k", "fuzz") if not (tmp / "k").exists() else keys.load_key(tmp / "k")
    claimed = [Claimed("k1", "claude", "s1", 1_772_355_600_000, "claude-sonnet-4-5", 10, 5, 0, 100, 0, 90_000, "p")]
    r = model.build(commit=COMMIT, tree=TREE, parents=[], author="a@example.com", committed_s=1_772_355_700,
                    claimed=claimed, prompts={}, carried=[], carried_digests=[], pricing="p", version="t")
    return json.loads(signing.sign(r, key, "a@example.com"))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_any_note_bytes_parse_without_crashing(raw: bytes) -> None:
    for line in parse_note(COMMIT, raw.decode("utf-8", "replace")):
        if line.receipt is not None:
            v = verify.check_receipt(line.receipt, COMMIT, TREE)
            assert v.status in (verify.INVALID, verify.UNSIGNED)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=12), json_values, max_size=16))
def test_any_object_verifies_without_crashing(obj: dict[str, Any]) -> None:
    v = verify.check_receipt(obj, COMMIT, TREE)
    assert v.status in (verify.INVALID, verify.UNSIGNED)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.lists(st.sampled_from(["totals", "sessions", 0, "models", "cost_usd", "input_tokens", "commit", "signer", "principal", "window", "start"]), min_size=1, max_size=5),
       value=json_values)
def test_no_mutation_of_a_signed_receipt_verifies(tmp_path: Path, path: list[Any], value: Any) -> None:
    r = _valid(tmp_path)
    assert verify.check_receipt(r, COMMIT, TREE).status == verify.UNVERIFIED
    target: Any = r
    for step in path[:-1]:
        try:
            target = target[step]
        except (KeyError, IndexError, TypeError):
            return
    try:
        if target[path[-1]] == value:
            return  # not a change
        target[path[-1]] = value
    except (KeyError, IndexError, TypeError):
        return
    v = verify.check_receipt(r, COMMIT, TREE)
    assert v.status == verify.INVALID, (path, value)
