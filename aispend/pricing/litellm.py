"""Convert LiteLLM's price table into aispend's offline pricing snapshot.

LiteLLM keeps one large JSON object, ``model_prices_and_context_window.json``,
and ships a copy inside every ``litellm`` wheel as
``litellm/model_prices_and_context_window_backup.json``.  Each key is a model
name as LiteLLM routes it (``claude-opus-4-6``, ``gpt-5.3-codex``,
``jp.anthropic.claude-haiku-4-5-20251001-v1:0``, ``vertex_ai/claude-opus-4-6``,
``gemini/gemini-2.5-pro`` ...); each value is a flat object whose price fields
are floats in **USD per token**.  The fields aispend reads are::

    litellm_provider                                   "anthropic", "openai", "bedrock_converse", ...
    mode                                               "chat", "responses", "embedding", ...
    input_cost_per_token                               -> input
    output_cost_per_token                              -> output
    cache_creation_input_token_cost                    -> cache_write_5m
    cache_creation_input_token_cost_above_1hr          -> cache_write_1h
    cache_read_input_token_cost                        -> cache_read
    input_cost_per_token_above_200k_tokens             -> above_200k.input
    output_cost_per_token_above_200k_tokens            -> above_200k.output
    cache_creation_input_token_cost_above_200k_tokens  -> above_200k.cache_write_5m
    cache_creation_input_token_cost_above_1hr_above_200k_tokens -> above_200k.cache_write_1h
    cache_read_input_token_cost_above_200k_tokens      -> above_200k.cache_read
    provider_specific_entry.fast                       -> fast_multiplier (a plain factor)

Everything else (batch/flex/priority tiers, the ``*_above_272k_tokens``
long-context fields, audio/image/search prices, the ``sample_spec`` entry) is
ignored.  The table also holds thousands of models aispend never sees, so the
converter keeps only chat/responses-mode coding models of Anthropic (direct,
Bedrock incl. geo prefixes ``us.``/``eu.``/``jp.``/``apac.``/``au.``/``global.``,
and Vertex), OpenAI (``gpt-4o*``, ``gpt-4.1*``, ``gpt-5*``, ``o1*``, ``o3*``,
``o4*``, ``*codex*``) and Google (``gemini-*`` via ``gemini`` and
``vertex_ai-language-models``), and drops image/audio/realtime/embedding/tts/
search-preview variants (also search-api, Gemini live/vision/computer-use/
robotics/gemma) and ``ft:`` fine-tunes.

Releases drop models and fields over time, so :func:`convert` merges several
tables, newest first: a model's entry comes from the newest table that has it
(``source``), and a price the newer entry lacks is filled in from the newest
older table that has it (``filled_from``).

Prices in the snapshot are decimal strings in **USD per million tokens**:
``Decimal(repr(float)) * 10**6``, normalised without exponent or trailing
zeros, so ``3.75e-06`` becomes ``"3.75"`` and ``2.5e-05`` becomes ``"25"``.
Never floats.  Snapshot layout::

    {
      "format": 1,
      "id": "litellm-<newest version>-<12 hex of sha256(canonical models JSON)>",
      "generated_from": [{"package": "litellm", "version": ..., "file": ..., "sha256": ...}, ...],
      "models": {
        "<litellm key>": {
          "provider": "anthropic",
          "input": "5", "output": "25",
          "cache_write_5m": "6.25", "cache_write_1h": "10", "cache_read": "0.5",
          "above_200k": {"input": ..., "output": ..., "cache_write_5m": ...,
                         "cache_write_1h": ..., "cache_read": ...},
          "fast_multiplier": "2",
          "source": "litellm==1.xx.y",
          "filled_from": {"above_200k": "litellm==1.yy.z"}
        }
      }
    }

Absent values are omitted, never null.  ``filled_from`` names a whole group
(``"above_200k"``) when every value of the group came from one older release
and the newer entry had none of them, else single fields (``"cache_write_1h"``,
``"above_200k.cache_read"``).

This module is stdlib-only and used at build time by
``scripts/build_pricing_snapshot.py``; aispend never imports litellm and never
touches the network at run time.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Iterable

FORMAT = 1

#: Snapshot price name -> LiteLLM field (USD per token).
BASE_FIELDS: dict[str, str] = {
    "input": "input_cost_per_token",
    "output": "output_cost_per_token",
    "cache_write_5m": "cache_creation_input_token_cost",
    "cache_write_1h": "cache_creation_input_token_cost_above_1hr",
    "cache_read": "cache_read_input_token_cost",
}

#: Snapshot ``above_200k`` price name -> LiteLLM field (USD per token).
ABOVE_200K_FIELDS: dict[str, str] = {
    "input": "input_cost_per_token_above_200k_tokens",
    "output": "output_cost_per_token_above_200k_tokens",
    "cache_write_5m": "cache_creation_input_token_cost_above_200k_tokens",
    "cache_write_1h": "cache_creation_input_token_cost_above_1hr_above_200k_tokens",
    "cache_read": "cache_read_input_token_cost_above_200k_tokens",
}

_PER_MILLION = Decimal(10**6)

_KEPT_MODES = frozenset({"chat", "responses"})

#: Name fragments of non-coding variants that are dropped even in chat mode.
_DROPPED_FRAGMENTS = (
    "image",
    "audio",
    "realtime",
    "embedding",
    "tts",
    "transcribe",
    "search-preview",
    "search-api",
    "-live",
    "vision",
    "computer-use",
    "robotics",
    "gemma",
)

_BEDROCK_PROVIDERS = frozenset({"bedrock", "bedrock_converse"})
# "anthropic.claude-..." optionally behind one geo prefix ("us.", "jp.", "global.", "us-gov.").
_BEDROCK_CLAUDE = re.compile(r"^(?:[a-z][a-z-]*\.)?anthropic\.claude-")
_OPENAI_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-5", "o1", "o3", "o4")
_GOOGLE_PROVIDERS = frozenset({"gemini", "vertex_ai-language-models"})


# --------------------------------------------------------------------------- #
# Values


def to_per_million(value: Any) -> str | None:
    """A LiteLLM per-token price as a decimal string per million tokens.

    Floats go through ``repr`` so the shortest round-tripping digits are used
    (``1.875e-08`` -> ``"0.01875"``).  Returns None for anything that is not a
    finite, non-negative number (bools, strings that are not numbers, NaN).
    """
    dec = _to_decimal(value)
    if dec is None:
        return None
    return _fmt(dec * _PER_MILLION)


def to_factor(value: Any) -> str | None:
    """A plain multiplier (no unit conversion) as a decimal string: ``2.0`` -> ``"2"``."""
    dec = _to_decimal(value)
    if dec is None:
        return None
    return _fmt(dec)


def _to_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        dec = Decimal(repr(value))
    elif isinstance(value, int):
        dec = Decimal(value)
    elif isinstance(value, str):
        try:
            dec = Decimal(value.strip())
        except InvalidOperation:
            return None
        if not dec.is_finite():
            return None
    else:
        return None
    if dec < 0:
        return None
    return dec


def _fmt(dec: Decimal) -> str:
    if dec == 0:
        return "0"
    text = format(dec.normalize(), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


# --------------------------------------------------------------------------- #
# Trimming


def keep(key: str, entry: Any) -> bool:
    """Whether a LiteLLM table entry is a coding model aispend may price."""
    if not isinstance(entry, dict) or key == "sample_spec":
        return False
    if entry.get("mode") not in _KEPT_MODES:
        return False
    name = key.lower()
    if name.startswith("ft:") or "/ft:" in name:
        return False
    if any(fragment in name for fragment in _DROPPED_FRAGMENTS):
        return False
    provider = entry.get("litellm_provider")
    if provider == "anthropic":
        return name.startswith("claude-")
    if provider in _BEDROCK_PROVIDERS:
        return bool(_BEDROCK_CLAUDE.match(name))
    if provider == "vertex_ai-anthropic_models":
        return name.startswith("vertex_ai/claude-") or (
            name.startswith("claude-") and "@" in name
        )
    if provider == "openai":
        return name.startswith(_OPENAI_PREFIXES) or "codex" in name
    if provider in _GOOGLE_PROVIDERS:
        bare = name.split("/", 1)[1] if name.startswith(("gemini/", "vertex_ai/")) else name
        return bare.startswith("gemini-")
    return False


# --------------------------------------------------------------------------- #
# Conversion


def extract_prices(entry: dict) -> dict[str, str]:
    """The prices of one LiteLLM entry as flat ``{"input": ..., "above_200k.input": ...}``."""
    flat: dict[str, str] = {}
    for name, field in BASE_FIELDS.items():
        value = to_per_million(entry.get(field))
        if value is not None:
            flat[name] = value
    for name, field in ABOVE_200K_FIELDS.items():
        value = to_per_million(entry.get(field))
        if value is not None:
            flat[f"above_200k.{name}"] = value
    specific = entry.get("provider_specific_entry")
    if isinstance(specific, dict):
        fast = to_factor(specific.get("fast"))
        if fast is not None:
            flat["fast_multiplier"] = fast
    return flat


def _leaf_order() -> list[str]:
    return (
        list(BASE_FIELDS)
        + [f"above_200k.{name}" for name in ABOVE_200K_FIELDS]
        + ["fast_multiplier"]
    )


_LEAVES = _leaf_order()


def _merge_model(key: str, found: list[tuple[str, dict]]) -> dict | None:
    """Merge one model's entries (newest first); None when it has no price."""
    source, newest = found[0]
    values = extract_prices(newest)
    origin: dict[str, str] = {}
    for label, entry in found[1:]:
        for leaf, value in extract_prices(entry).items():
            if leaf not in values:
                values[leaf] = value
                origin[leaf] = label
    if "input" not in values and "output" not in values:
        return None

    model: dict[str, Any] = {}
    provider = newest.get("litellm_provider")
    if isinstance(provider, str):
        model["provider"] = provider
    above: dict[str, str] = {}
    for leaf in _LEAVES:
        if leaf not in values:
            continue
        if leaf.startswith("above_200k."):
            above[leaf.split(".", 1)[1]] = values[leaf]
        else:
            model[leaf] = values[leaf]
    if above:
        model["above_200k"] = above
    model["source"] = source

    filled = _collapse_origin(origin, values)
    if filled:
        model["filled_from"] = filled
    return model


def _collapse_origin(origin: dict[str, str], values: dict[str, str]) -> dict[str, str]:
    filled: dict[str, str] = {}
    group = [leaf for leaf in values if leaf.startswith("above_200k.")]
    group_sources = {origin[leaf] for leaf in group if leaf in origin}
    if group and len(group_sources) == 1 and all(leaf in origin for leaf in group):
        filled["above_200k"] = group_sources.pop()
        rest = {leaf: label for leaf, label in origin.items() if leaf not in group}
    else:
        rest = origin
    for leaf, label in rest.items():
        filled[leaf] = label
    return dict(sorted(filled.items()))


def convert_models(tables: Iterable[tuple[str, dict]]) -> dict[str, dict]:
    """The ``models`` object of a snapshot; ``tables`` are (label, table), newest first.

    Whether a model is kept is decided by the newest table that has it.
    """
    tables = list(tables)
    keys: list[str] = []
    seen: set[str] = set()
    for _label, table in tables:
        for key in table:
            if key not in seen:
                seen.add(key)
                keys.append(key)

    models: dict[str, dict] = {}
    for key in keys:
        found = [
            (label, table[key])
            for label, table in tables
            if isinstance(table.get(key), dict)
        ]
        if not found or not keep(key, found[0][1]):
            continue
        merged = _merge_model(key, found)
        if merged is not None:
            models[key] = merged
    return dict(sorted(models.items()))


def canonical_json(obj: Any) -> bytes:
    """The bytes hashed for a snapshot id: sorted keys, no whitespace, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def snapshot_id(newest_label: str, models: dict) -> str:
    """``litellm-<version>-<12 hex>`` for label ``litellm==<version>``."""
    package, sep, version = newest_label.partition("==")
    stem = f"{package}-{version}" if sep else re.sub(r"[^A-Za-z0-9._-]+", "-", newest_label)
    return f"{stem}-{hashlib.sha256(canonical_json(models)).hexdigest()[:12]}"


def convert(
    tables: list[tuple[str, dict]],
    *,
    generated_from: list[dict] | None = None,
) -> dict:
    """Build a whole snapshot from (label, parsed LiteLLM table) pairs, newest first.

    Labels look like ``"litellm==1.80.0"``.  ``generated_from`` (newest first)
    describes the inputs; when not given it is derived from the labels.
    """
    if not tables:
        raise ValueError("convert() needs at least one table")
    models = convert_models(tables)
    if generated_from is None:
        generated_from = []
        for label, _table in tables:
            package, sep, version = label.partition("==")
            generated_from.append(
                {"package": package, "version": version} if sep else {"label": label}
            )
    return {
        "format": FORMAT,
        "id": snapshot_id(tables[0][0], models),
        "generated_from": list(generated_from),
        "models": models,
    }


def load_litellm_file(path: str | Path) -> dict:
    """Parse one ``model_prices_and_context_window*.json`` file."""
    with open(path, "rb") as fh:
        data = json.loads(fh.read().decode("utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a LiteLLM price table (top level is not an object)")
    return data


def dumps_snapshot(snapshot: dict) -> str:
    """The snapshot as written to disk: 2-space indent, sorted keys, trailing newline."""
    return json.dumps(snapshot, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
