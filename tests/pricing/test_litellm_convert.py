"""The LiteLLM -> snapshot converter, and the snapshot shipped with aispend."""

from __future__ import annotations

import hashlib
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from aispend.pricing.litellm import (
    canonical_json,
    convert,
    dumps_snapshot,
    keep,
    load_litellm_file,
    to_factor,
    to_per_million,
)

SNAPSHOT = Path(__file__).resolve().parents[2] / "aispend" / "pricing" / "snapshot.json"


def claude(inp, out, **extra):
    entry = {
        "litellm_provider": "anthropic",
        "mode": "chat",
        "input_cost_per_token": inp,
        "output_cost_per_token": out,
        "max_input_tokens": 200000,
        "supports_vision": True,
    }
    entry.update(extra)
    return entry


def openai(inp, out, mode="chat", **extra):
    entry = {
        "litellm_provider": "openai",
        "mode": mode,
        "input_cost_per_token": inp,
        "output_cost_per_token": out,
    }
    entry.update(extra)
    return entry


SAMPLE_SPEC = {"sample_spec": {"input_cost_per_token": 0.0, "litellm_provider": "one of ..."}}


# --------------------------------------------------------------------------- #
# values


@pytest.mark.parametrize(
    "value, expected",
    [
        (3.75e-06, "3.75"),
        (1.875e-08, "0.01875"),
        (5e-06, "5"),
        (2.5e-05, "25"),
        (1e-05, "10"),
        (1.75e-07, "0.175"),
        (1.4e-05, "14"),
        (1.1e-06, "1.1"),
        (3e-07, "0.3"),
        (0.0, "0"),
        (0, "0"),
        (1, "1000000"),
        ("3e-06", "3"),
    ],
)
def test_per_token_float_becomes_exact_per_million_string(value, expected):
    assert to_per_million(value) == expected


@pytest.mark.parametrize("value", [None, True, "abc", float("nan"), float("inf"), -1e-06, [1]])
def test_non_prices_are_dropped(value):
    assert to_per_million(value) is None


def test_factor_is_not_scaled():
    assert to_factor(2.0) == "2"
    assert to_factor(6) == "6"
    assert to_factor(1.1) == "1.1"


def test_prices_are_strings_never_floats():
    snap = convert([("litellm==2.0.0", {"claude-x-1": claude(3.3e-06, 1.65e-05)})])
    entry = snap["models"]["claude-x-1"]
    assert entry["input"] == "3.3" and entry["output"] == "16.5"
    # Decimal(repr(float)) avoids binary noise such as 3.2999999999999997
    assert Decimal(entry["input"]) * 5 == Decimal("16.5")


# --------------------------------------------------------------------------- #
# field mapping


def test_all_price_kinds_are_mapped():
    table = {
        "claude-opus-9": claude(
            5e-06,
            2.5e-05,
            cache_creation_input_token_cost=6.25e-06,
            cache_creation_input_token_cost_above_1hr=1e-05,
            cache_read_input_token_cost=5e-07,
            input_cost_per_token_above_200k_tokens=1e-05,
            output_cost_per_token_above_200k_tokens=3.75e-05,
            cache_creation_input_token_cost_above_200k_tokens=1.25e-05,
            cache_creation_input_token_cost_above_1hr_above_200k_tokens=2e-05,
            cache_read_input_token_cost_above_200k_tokens=1e-06,
            provider_specific_entry={"us": 1.1, "fast": 2.0},
            input_cost_per_token_batches=2.5e-06,  # ignored
            input_cost_per_token_priority=1e-05,  # ignored
        )
    }
    entry = convert([("litellm==2.0.0", table)])["models"]["claude-opus-9"]
    assert entry == {
        "provider": "anthropic",
        "input": "5",
        "output": "25",
        "cache_write_5m": "6.25",
        "cache_write_1h": "10",
        "cache_read": "0.5",
        "above_200k": {
            "input": "10",
            "output": "37.5",
            "cache_write_5m": "12.5",
            "cache_write_1h": "20",
            "cache_read": "1",
        },
        "fast_multiplier": "2",
        "source": "litellm==2.0.0",
    }


def test_absent_values_are_omitted():
    entry = convert([("litellm==2.0.0", {"gpt-5-x": openai(1.25e-06, 1e-05)})])["models"]["gpt-5-x"]
    assert entry == {"provider": "openai", "input": "1.25", "output": "10", "source": "litellm==2.0.0"}


def test_fast_multiplier_kept_other_provider_specific_values_ignored():
    table = {
        "claude-a": claude(1e-06, 5e-06, provider_specific_entry={"fast": 6.0, "us": 1.1}),
        "claude-b": claude(1e-06, 5e-06, provider_specific_entry={"us": 1.1}),
    }
    models = convert([("litellm==2.0.0", table)])["models"]
    assert models["claude-a"]["fast_multiplier"] == "6"
    assert "fast_multiplier" not in models["claude-b"]


def test_model_without_any_price_is_dropped():
    table = {"claude-free": {"litellm_provider": "anthropic", "mode": "chat"}}
    assert convert([("litellm==2.0.0", table)])["models"] == {}


# --------------------------------------------------------------------------- #
# merging releases


def test_newest_release_wins():
    new = {"claude-m": claude(3e-06, 1.5e-05)}
    old = {"claude-m": claude(4e-06, 2e-05)}
    entry = convert([("litellm==2.0.0", new), ("litellm==1.0.0", old)])["models"]["claude-m"]
    assert entry["input"] == "3" and entry["output"] == "15"
    assert entry["source"] == "litellm==2.0.0"
    assert "filled_from" not in entry


def test_older_release_supplies_a_model_the_newer_dropped():
    new = {"claude-new": claude(3e-06, 1.5e-05)}
    mid = {"claude-mid": claude(2e-06, 1e-05)}
    old = {"claude-gone": claude(1.5e-05, 7.5e-05), "claude-mid": claude(9e-06, 9e-05)}
    models = convert(
        [("litellm==3.0.0", new), ("litellm==2.0.0", mid), ("litellm==1.0.0", old)]
    )["models"]
    assert set(models) == {"claude-new", "claude-mid", "claude-gone"}
    assert models["claude-gone"]["source"] == "litellm==1.0.0"
    assert models["claude-gone"]["input"] == "15"
    # the newest release that has the model wins among the older ones too
    assert models["claude-mid"]["source"] == "litellm==2.0.0"
    assert models["claude-mid"]["input"] == "2"


def test_older_release_fills_missing_above_200k_group():
    new = {"claude-sonnet-4-5": claude(3e-06, 1.5e-05, cache_read_input_token_cost=3e-07)}
    old = {
        "claude-sonnet-4-5": claude(
            3e-06,
            1.5e-05,
            cache_read_input_token_cost=3e-07,
            input_cost_per_token_above_200k_tokens=6e-06,
            output_cost_per_token_above_200k_tokens=2.25e-05,
            cache_read_input_token_cost_above_200k_tokens=6e-07,
        )
    }
    entry = convert([("litellm==2.0.0", new), ("litellm==1.0.0", old)])["models"][
        "claude-sonnet-4-5"
    ]
    assert entry["above_200k"] == {"input": "6", "output": "22.5", "cache_read": "0.6"}
    assert entry["source"] == "litellm==2.0.0"
    assert entry["filled_from"] == {"above_200k": "litellm==1.0.0"}


def test_partial_fill_is_recorded_per_field():
    new = {
        "claude-p": claude(
            3e-06,
            1.5e-05,
            input_cost_per_token_above_200k_tokens=6e-06,
            output_cost_per_token_above_200k_tokens=2.25e-05,
        )
    }
    mid = {"claude-p": claude(3e-06, 1.5e-05, cache_creation_input_token_cost_above_1hr=6e-06)}
    old = {
        "claude-p": claude(
            1e-06,  # never used: newer input wins
            1.5e-05,
            cache_creation_input_token_cost_above_1hr=9e-06,  # mid already filled it
            cache_read_input_token_cost_above_200k_tokens=6e-07,
            provider_specific_entry={"fast": 6.0},
        )
    }
    entry = convert(
        [("litellm==3.0.0", new), ("litellm==2.0.0", mid), ("litellm==1.0.0", old)]
    )["models"]["claude-p"]
    assert entry["input"] == "3"
    assert entry["cache_write_1h"] == "6"
    assert entry["above_200k"] == {"input": "6", "output": "22.5", "cache_read": "0.6"}
    assert entry["fast_multiplier"] == "6"
    assert entry["filled_from"] == {
        "above_200k.cache_read": "litellm==1.0.0",
        "cache_write_1h": "litellm==2.0.0",
        "fast_multiplier": "litellm==1.0.0",
    }


def test_above_200k_from_two_older_releases_is_recorded_per_field():
    new = {"claude-q": claude(3e-06, 1.5e-05)}
    mid = {"claude-q": claude(3e-06, 1.5e-05, input_cost_per_token_above_200k_tokens=6e-06)}
    old = {"claude-q": claude(3e-06, 1.5e-05, output_cost_per_token_above_200k_tokens=2.25e-05)}
    entry = convert(
        [("litellm==3.0.0", new), ("litellm==2.0.0", mid), ("litellm==1.0.0", old)]
    )["models"]["claude-q"]
    assert entry["filled_from"] == {
        "above_200k.input": "litellm==2.0.0",
        "above_200k.output": "litellm==1.0.0",
    }


def test_newest_release_decides_whether_a_model_is_kept():
    new = {"claude-x": {**claude(1e-06, 1e-06), "mode": "image_generation"}}
    old = {"claude-x": claude(1e-06, 1e-06)}
    assert convert([("litellm==2.0.0", new), ("litellm==1.0.0", old)])["models"] == {}


# --------------------------------------------------------------------------- #
# trimming


KEPT = {
    "claude-opus-4-6": claude(5e-06, 2.5e-05),
    "anthropic.claude-haiku-4-5-20251001-v1:0": {**claude(1e-06, 5e-06), "litellm_provider": "bedrock_converse"},
    "jp.anthropic.claude-haiku-4-5-20251001-v1:0": {**claude(1.1e-06, 5.5e-06), "litellm_provider": "bedrock_converse"},
    "global.anthropic.claude-opus-4-6-v1": {**claude(5e-06, 2.5e-05), "litellm_provider": "bedrock_converse"},
    "us.anthropic.claude-3-5-haiku-20241022-v1:0": {**claude(8e-07, 4e-06), "litellm_provider": "bedrock"},
    "vertex_ai/claude-opus-4-6@default": {**claude(5e-06, 2.5e-05), "litellm_provider": "vertex_ai-anthropic_models"},
    "claude-sonnet-4-5@20250929": {**claude(3e-06, 1.5e-05), "litellm_provider": "vertex_ai-anthropic_models"},
    "gpt-4o": openai(2.5e-06, 1e-05),
    "gpt-4.1-mini": openai(4e-07, 1.6e-06),
    "gpt-5.3-codex": openai(1.75e-06, 1.4e-05, mode="responses"),
    "codex-mini-latest": openai(1.5e-06, 6e-06, mode="responses"),
    "o1": openai(1.5e-05, 6e-05),
    "o3": openai(2e-06, 8e-06),
    "o4-mini": openai(1.1e-06, 4.4e-06),
    "gemini/gemini-2.5-pro": {"litellm_provider": "gemini", "mode": "chat", "input_cost_per_token": 1.25e-06, "output_cost_per_token": 1e-05},
    "gemini-2.5-pro": {"litellm_provider": "vertex_ai-language-models", "mode": "chat", "input_cost_per_token": 1.25e-06, "output_cost_per_token": 1e-05},
}

DROPPED = {
    # other providers, even for the same models
    "openrouter/anthropic/claude-opus-4-6": {**claude(5e-06, 2.5e-05), "litellm_provider": "openrouter"},
    "azure/gpt-4o": {**openai(2.5e-06, 1e-05), "litellm_provider": "azure"},
    "github_copilot/claude-opus-4.6-fast": {**claude(5e-06, 2.5e-05), "litellm_provider": "github_copilot"},
    "bedrock/us-east-1/anthropic.claude-3-5-sonnet-20240620-v1:0": {**claude(3e-06, 1.5e-05), "litellm_provider": "bedrock"},
    "bedrock_mantle/anthropic.claude-haiku-4-5": {**claude(1e-06, 5e-06), "litellm_provider": "bedrock_mantle"},
    "mistral/codestral-latest": {"litellm_provider": "mistral", "mode": "chat", "input_cost_per_token": 1e-06, "output_cost_per_token": 3e-06},
    # OpenAI models outside the coding families
    "gpt-3.5-turbo": openai(5e-07, 1.5e-06),
    "chatgpt-4o-latest": openai(5e-06, 1.5e-05),
    # non-chat modes and variants
    "text-embedding-3-small": {**openai(2e-08, 0), "mode": "embedding"},
    "gpt-4o-realtime-preview": openai(5e-06, 2e-05),
    "gpt-4o-audio-preview": openai(2.5e-06, 1e-05),
    "gpt-4o-mini-tts": {**openai(6e-07, 1.2e-05), "mode": "audio_speech"},
    "gpt-4o-transcribe": {**openai(2.5e-06, 1e-05), "mode": "audio_transcription"},
    "gpt-4o-search-preview": openai(2.5e-06, 1e-05),
    "gpt-image-1": {**openai(5e-06, 4e-05), "mode": "image_generation"},
    "gpt-5-image": openai(5e-06, 4e-05),
    "gemini/gemini-2.5-flash-image": {"litellm_provider": "gemini", "mode": "chat", "input_cost_per_token": 3e-07, "output_cost_per_token": 3e-05},
    "gemini/gemini-2.0-flash-live-001": {"litellm_provider": "gemini", "mode": "chat", "input_cost_per_token": 3.5e-07, "output_cost_per_token": 1.5e-06},
    "gemini/gemma-3-27b-it": {"litellm_provider": "gemini", "mode": "chat", "input_cost_per_token": 0, "output_cost_per_token": 0},
    # fine-tunes
    "ft:gpt-4o-2024-08-06": openai(3.75e-06, 1.5e-05),
    "ft:gpt-4.1-2025-04-14": openai(3e-06, 1.2e-05),
}


def test_trimming_keeps_coding_models_only():
    table = {**SAMPLE_SPEC, **KEPT, **DROPPED}
    models = convert([("litellm==2.0.0", table)])["models"]
    assert set(models) == set(KEPT)
    assert models["jp.anthropic.claude-haiku-4-5-20251001-v1:0"]["provider"] == "bedrock_converse"


@pytest.mark.parametrize("key", sorted(DROPPED))
def test_keep_rejects(key):
    assert not keep(key, DROPPED[key])


def test_keep_rejects_sample_spec_and_non_dicts():
    assert not keep("sample_spec", {**claude(1e-06, 1e-06)})
    assert not keep("claude-x", "not an entry")


# --------------------------------------------------------------------------- #
# snapshot envelope


def test_snapshot_envelope_and_id():
    table = {"claude-opus-4-6": claude(5e-06, 2.5e-05)}
    gen = [{"package": "litellm", "version": "2.0.0", "file": "f.json", "sha256": "ab" * 32}]
    snap = convert([("litellm==2.0.0", table)], generated_from=gen)
    assert snap["format"] == 1
    assert snap["generated_from"] == gen
    digest = hashlib.sha256(canonical_json(snap["models"])).hexdigest()
    assert snap["id"] == f"litellm-2.0.0-{digest[:12]}"


def test_generated_from_defaults_to_labels():
    snap = convert([("litellm==2.0.0", {}), ("litellm==1.0.0", {})])
    assert snap["generated_from"] == [
        {"package": "litellm", "version": "2.0.0"},
        {"package": "litellm", "version": "1.0.0"},
    ]


def test_id_changes_with_prices():
    a = convert([("litellm==2.0.0", {"claude-m": claude(3e-06, 1.5e-05)})])
    b = convert([("litellm==2.0.0", {"claude-m": claude(3e-06, 1.6e-05)})])
    assert a["id"] != b["id"]


def test_convert_needs_a_table():
    with pytest.raises(ValueError):
        convert([])


def test_load_litellm_file_and_dumps(tmp_path):
    path = tmp_path / "model_prices_and_context_window.json"
    path.write_text(json.dumps({**SAMPLE_SPEC, "claude-opus-4-6": claude(5e-06, 2.5e-05)}))
    table = load_litellm_file(path)
    text = dumps_snapshot(convert([("litellm==2.0.0", table)]))
    assert text.endswith("}\n")
    assert json.loads(text)["models"]["claude-opus-4-6"]["output"] == "25"
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(ValueError):
        load_litellm_file(tmp_path / "list.json")


# --------------------------------------------------------------------------- #
# the shipped snapshot


@pytest.fixture(scope="module")
def shipped():
    text = SNAPSHOT.read_text(encoding="utf-8")
    return text, json.loads(text)


def test_shipped_snapshot_is_well_formed(shipped):
    text, snap = shipped
    assert snap["format"] == 1
    assert text == dumps_snapshot(snap)  # pretty, sorted, trailing newline
    newest = snap["generated_from"][0]["version"]
    digest = hashlib.sha256(canonical_json(snap["models"])).hexdigest()
    assert snap["id"] == f"litellm-{newest}-{digest[:12]}"
    for item in snap["generated_from"]:
        assert item["package"] == "litellm"
        assert item["file"] == "litellm/model_prices_and_context_window_backup.json"
        assert re.fullmatch(r"[0-9a-f]{64}", item["sha256"])
    labels = {f"litellm=={item['version']}" for item in snap["generated_from"]}
    number = re.compile(r"(0|[1-9][0-9]*)(\.[0-9]*[1-9])?")
    for key, entry in snap["models"].items():
        assert entry["source"] in labels, key
        assert set(entry.get("filled_from", {}).values()) <= labels, key
        prices = [entry.get(f) for f in ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")]
        prices += list(entry.get("above_200k", {}).values())
        for price in prices:
            assert price is None or (isinstance(price, str) and number.fullmatch(price)), (key, price)


def test_shipped_snapshot_real_prices(shipped):
    _, snap = shipped
    m = snap["models"]

    opus = m["claude-opus-4-6"]
    assert (opus["input"], opus["output"], opus["cache_write_5m"], opus["cache_read"]) == (
        "5", "25", "6.25", "0.5",
    )
    assert opus["cache_write_1h"] == "10"
    # 1M context is billed flat for Opus 4.6; an older release's >200k premium must not leak in.
    assert "above_200k" not in opus

    sonnet = m["claude-sonnet-4-5"]
    assert sonnet["above_200k"]["input"] == "6"
    assert sonnet["above_200k"]["output"] == "22.5"
    assert sonnet["above_200k"]["cache_read"] == "0.6"
    assert sonnet["above_200k"]["cache_write_5m"] == "7.5"

    for key in (
        "claude-sonnet-4-20250514",
        "claude-opus-4-1-20250805",
        "claude-3-5-sonnet-20241022",
        "claude-3-opus-20240229",
        "vertex_ai/claude-3-opus",
        "gpt-4o",
        "o3",
        "gpt-5",
        "gpt-5-codex",
    ):
        assert key in m, key
        assert "input" in m[key] and "output" in m[key], key

    codex = m["gpt-5.3-codex"]
    assert (codex["input"], codex["cache_read"], codex["output"]) == ("1.75", "0.175", "14")
    gpt55 = m["gpt-5.5"]
    assert (gpt55["input"], gpt55["cache_read"], gpt55["output"]) == ("5", "0.5", "30")

    haiku = m["claude-haiku-4-5"]
    jp = m["jp.anthropic.claude-haiku-4-5-20251001-v1:0"]
    assert (haiku["input"], haiku["output"]) == ("1", "5")
    assert (jp["input"], jp["output"]) == ("1.1", "5.5")
    for field in ("input", "output", "cache_write_5m", "cache_read"):
        assert Decimal(jp[field]) == Decimal(haiku[field]) * Decimal("1.1"), field


def test_shipped_snapshot_is_trimmed(shipped):
    text, snap = shipped
    assert len(text.encode("utf-8")) < 250_000
    providers = {entry["provider"] for entry in snap["models"].values()}
    assert providers <= {
        "anthropic",
        "bedrock",
        "bedrock_converse",
        "vertex_ai-anthropic_models",
        "openai",
        "gemini",
        "vertex_ai-language-models",
    }
    assert not any(k.startswith("ft:") or "realtime" in k or "embedding" in k for k in snap["models"])
