"""``aispend pricing show|update|reset``: offline price updates that never forget a model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.test_cli import cli
from tests.logbuilder import Logs, write


def test_show_one_model_resolves_proxy_names(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "pricing", "show", "converse/jp.anthropic.claude-haiku-4-5-20251001-v1:0", "--json")
    assert code == 0
    d = json.loads(out)
    assert d["matched"] == "jp.anthropic.claude-haiku-4-5-20251001-v1:0"
    assert (d["input"], d["output"]) == ("1.1", "5.5")
    assert d["table"].startswith("litellm-1.109.1-")
    code, out, _ = cli(capsys, "pricing", "show", "claude-sonnet-4-5")
    assert code == 0 and ">200k input" in out and "litellm==1.102.4" in out


def test_show_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "pricing", "show", "--json")
    d = json.loads(out)
    assert code == 0 and len(d["models"]) > 300
    assert d["models"]["gpt-5.3-codex"]["cache_read"] == "0.175"


def _litellm_file(tmp_path: Path) -> Path:
    f = tmp_path / "model_prices_and_context_window.json"
    f.write_text(
        json.dumps(
            {
                "sample_spec": {"input_cost_per_token": 0},
                "claude-future-9": {"litellm_provider": "anthropic", "mode": "chat", "input_cost_per_token": 2e-06, "output_cost_per_token": 1e-05},
                "gpt-5.3-codex": {"litellm_provider": "openai", "mode": "responses", "input_cost_per_token": 2e-06, "output_cost_per_token": 1.6e-05, "cache_read_input_token_cost": 2e-07},
            }
        )
    )
    return f


def test_update_adds_models_keeps_old_ones_and_reprices(capsys: pytest.CaptureFixture[str], logs: Logs, tmp_path: Path) -> None:
    write(logs.claude_file("s1"), [Logs.assistant("2026-02-12T14:00:00.000Z", session="s1", model="claude-future-9", inp=1000, out=100)])
    d = json.loads(cli(capsys, "usage", "--json")[1])
    assert d["totals"]["unpriced_models"] == ["claude-future-9"] and d["totals"]["cost_usd"] == 0
    code, out, err = cli(capsys, "pricing", "update", "--from", str(_litellm_file(tmp_path)))
    assert code == 0, err
    assert "stored price table custom-" in out and "re-priced 1 request (0 still without a price)" in out
    d = json.loads(cli(capsys, "usage", "--json")[1])
    assert d["totals"]["unpriced_models"] == [] and d["totals"]["cost_usd"] == 0.003  # 1000*2 + 100*10 micro-dollars
    shown = json.loads(cli(capsys, "pricing", "show", "gpt-5.3-codex", "--json")[1])
    assert (shown["input"], shown["output"], shown["cache_read"]) == ("2", "16", "0.2")
    assert shown["source"].startswith("file:model_prices_and_context_window.json@sha256:")
    # models the new file lacks are still there, with their old provenance
    old = json.loads(cli(capsys, "pricing", "show", "claude-sonnet-4-20250514", "--json")[1])
    assert old["source"] == "litellm==1.102.4"
    code, out, _ = cli(capsys, "pricing", "reset")
    assert code == 0 and out.startswith("removed the stored table; using litellm-1.109.1-")
    d = json.loads(cli(capsys, "usage", "--json")[1])
    assert d["totals"]["unpriced_models"] == ["claude-future-9"]


def test_update_rejects_files_without_prices(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    f = tmp_path / "empty.json"
    f.write_text(json.dumps({"some-image-model": {"litellm_provider": "stability", "mode": "image_generation"}}))
    code, _, err = cli(capsys, "pricing", "update", "--from", str(f))
    assert code == 1 and "holds no Anthropic, OpenAI or Google coding model prices" in err
    f.write_text("[1, 2")
    code, _, err = cli(capsys, "pricing", "update", "--from", str(f))
    assert code == 1 and "is not JSON" in err and err.count("\n") == 1
