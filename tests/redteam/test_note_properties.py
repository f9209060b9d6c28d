"""Property tests over note contents: whatever bytes surround or vary a valid receipt, the
counted spend is exactly that receipt's, once; and every line is seen."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aispend.attribution import Claimed
from aispend.notes.store import parse_note
from aispend.receipts import counting, keys, model, signing, verify

COMMIT, TREE = "a" * 40, "b" * 40
_KEY: list[keys.SigningKey] = []


def _key(tmp: Path) -> keys.SigningKey:
    if not _KEY:
        _KEY.append(keys.create_key(tmp / "k", "prop"))
    return _KEY[0]


def _line(tmp: Path, n: int = 1) -> str:
    claimed = [Claimed(f"k{i}", "claude", "s1", 1_772_355_600_000 + i, "claude-sonnet-4-5", 1000, 500, 0, 0, 0, 10_500_000, "p") for i in range(n)]
    r = model.build(commit=COMMIT, tree=TREE, parents=[], author="a@example.com", committed_s=1_772_355_700,
                    claimed=claimed, prompts={}, carried=[], carried_digests=[], pricing="p", version="t")
    return signing.sign(r, _key(tmp), "a@example.com")


def _count(note: bytes, trusted: list[keys.AllowedSigner]) -> tuple[int, list[Any]]:
    entries = []
    for line in parse_note(COMMIT, note):
        if line.receipt is None:
            v = verify.Verification(verify.INVALID, [line.problem or ""], usable=False)
        else:
            v = verify.check_receipt(line.receipt, COMMIT, TREE, trusted, line.text)
        entries.append(counting.Entry(line, line.text, line.receipt, v))
    ledger = counting.count(entries)
    return sum(model.nusd_of(e.receipt["totals"]["cost_usd"]) or 0 for e in ledger.counted if e.receipt), ledger.entries


def _mutations(line: str) -> st.SearchStrategy[bytes]:
    raw = line.encode()
    obj = json.loads(line)
    insert = st.tuples(st.integers(0, len(raw)), st.sampled_from([b" ", b"\t", b"\r", b"\x1e", b"\x0c", b"\x00", b"\xff", b"\\u0041"])).map(
        lambda t: raw[: t[0]] + t[1] + raw[t[0]:]
    )
    whole = st.sampled_from([
        json.dumps(obj, sort_keys=True).encode(),
        json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).replace("claude", "\\u0063laude", 1).encode(),
        json.dumps(dict(reversed(list(obj.items()))), separators=(",", ":")).encode(),
        ('{"v":1,' + line[1:]).encode(),
        model.canonical({**obj, "totals": {**obj["totals"], "cost_usd": "1.05e-2"}}).encode(),
        model.canonical({**obj, "totals": {**obj["totals"], "requests": 1.0}}).encode(),
        raw,
    ])
    return st.one_of(insert, whole)


@pytest.fixture(scope="module")
def tmp_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prop")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture], derandomize=True)
@given(data=st.data())
def test_variants_and_copies_never_count_twice(tmp_key: Path, data: st.DataObject) -> None:
    line = _line(tmp_key)
    trusted, _ = keys.parse_allowed_signers(keys.allowed_signers_line("a@example.com", _key(tmp_key).public_line))
    extra = data.draw(st.lists(_mutations(line), min_size=0, max_size=6))
    order = data.draw(st.permutations([line.encode(), *extra]))
    note = b"\n".join(order) + data.draw(st.sampled_from([b"", b"\n", b"\n\n"]))
    total, entries = _count(note, trusted)
    assert total == 10_500_000  # exactly the one receipt, once
    assert len(entries) == len([x for x in order if x])  # every non-empty line is seen
    assert sum(1 for e in entries if e.fate == counting.COUNTED) == 1


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.binary(max_size=3000))
def test_junk_notes_count_nothing(raw: bytes) -> None:
    total, entries = _count(raw, [])
    assert total == 0 and all(e.fate == counting.APART for e in entries)


def test_untrusted_or_unchecked_counts_nothing(tmp_key: Path) -> None:
    line = _line(tmp_key)
    other = keys.create_key(tmp_key / "other", "o") if not (tmp_key / "other").exists() else keys.load_key(tmp_key / "other")
    listed, _ = keys.parse_allowed_signers(keys.allowed_signers_line("a@example.com", other.public_line))
    assert _count(line.encode(), listed)[0] == 0
    total, entries = _count(line.encode(), None)  # type: ignore[arg-type]
    assert total == 0 and entries[0].status == verify.UNVERIFIED


def test_the_documented_openssh_recipe_checks_a_receipt(tmp_path: Path) -> None:
    """docs/receipt.md's jq + ssh-keygen recipe verifies a receipt byte for byte."""
    if shutil.which("ssh-keygen") is None or shutil.which("jq") is None:
        pytest.skip("ssh-keygen or jq is not installed")
    key = keys.create_key(tmp_path / "k2", "r")
    claimed = [Claimed("k", "claude", "sé\u00e9ssion-ü", 1_772_355_600_000, "modèle-∑", 2**53 - 1, 0, 0, 0, 0, None, "p")]
    r = model.build(commit=COMMIT, tree=TREE, parents=[], author="a@example.com", committed_s=1_772_355_700,
                    claimed=claimed, prompts={}, carried=[], carried_digests=[], pricing="p", version="t")
    line = signing.sign(r, key, "a@example.com")
    assert verify.form_problems(json.loads(line), line) == []
    (tmp_path / "signers").write_text(keys.allowed_signers_line("a@example.com", key.public_line) + "\n")
    docs = (Path(__file__).resolve().parents[2] / "docs" / "receipt.md").read_text()
    recipe = docs.split("To check a receipt with OpenSSH alone:\n\n```sh\n", 1)[1].split("```", 1)[0]
    script = recipe.replace("$(git notes --ref=aispend show HEAD | head -1)", "$(cat line.txt)").replace(".aispend/allowed_signers", "signers")
    (tmp_path / "line.txt").write_text(line)
    p = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "Good \"aispend-receipt\" signature for a@example.com" in p.stdout + p.stderr
    assert (tmp_path / "signed.json").read_bytes() == model.signed_part(json.loads(line))
    # the signature bytes are the receipt's
    assert base64.b64encode((tmp_path / "sig.bin").read_bytes()).decode() == json.loads(line)["sig"]


def test_a_carrier_of_two_carriers_of_one_receipt_counts_it_once(tmp_key: Path) -> None:
    """X is inside C1 and C2; N carries both (holding X twice): the count holds X once."""
    key = _key(tmp_key)
    trusted, _ = keys.parse_allowed_signers(keys.allowed_signers_line("*@example.com", key.public_line))

    def receipt(commit: str, claimed: list[Claimed], carried: list[str]) -> str:
        olds = [json.loads(x) for x in carried]
        r = model.build(commit=commit, tree=TREE, parents=[], author="a@example.com", committed_s=1_772_355_700,
                        claimed=claimed, prompts={}, carried=olds, carried_digests=[model.digest(x) for x in carried],
                        pricing="p", version="t")
        return signing.sign(r, key, "a@example.com")

    x = receipt("1" * 40, [Claimed("x", "claude", "sx", 1_772_355_600_000, "m", 1000, 500, 0, 0, 0, 10_500_000, "p")], [])
    c1 = receipt("2" * 40, [Claimed("c1", "claude", "s1", 1_772_355_600_001, "m", 10, 0, 0, 0, 0, 1_000, "p")], [x])
    c2 = receipt("3" * 40, [], [x])
    n = receipt(COMMIT, [], [c1, c2])
    assert model.nusd_of(json.loads(n)["totals"]["cost_usd"]) == 2 * 10_500_000 + 1_000  # X twice inside N
    by_digest = {model.digest(v): json.loads(v) for v in (x, c1, c2)}
    [line] = parse_note(COMMIT, n.encode())
    e = counting.Entry(line, line.text, line.receipt, verify.check_receipt(line.receipt, COMMIT, TREE, trusted, line.text))
    ledger = counting.count([e], by_digest.get)
    counted_receipt = ledger.entries[0].counted_receipt
    assert counted_receipt is not None
    assert model.nusd_of(counted_receipt["totals"]["cost_usd"]) == 10_500_000 + 1_000  # X once
    assert counted_receipt["totals"]["requests"] == 2
    # Without the originals at hand the overlap cannot be subtracted, and that is reported.
    blind = counting.count([counting.Entry(line, line.text, line.receipt, e.result)])
    assert blind.unresolved == 0  # N names C1 and C2 once each: nothing visible to subtract


def test_committed_at_must_be_the_commits_time(tmp_key: Path) -> None:
    """A retired key's holder cannot backdate committed_at past valid-before: it must match the commit."""
    line = _line(tmp_key)
    r = json.loads(line)
    trusted, _ = keys.parse_allowed_signers(keys.allowed_signers_line("a@example.com", _key(tmp_key).public_line))
    assert verify.check_receipt(r, COMMIT, TREE, trusted, line, committed_s=1_772_355_700).status == verify.VALID
    v = verify.check_receipt(r, COMMIT, TREE, trusted, line, committed_s=1_772_355_701)
    assert v.status == verify.INVALID and "the commit says 2026-03-01T09:01:41.000Z" in v.problems[0]


def test_identity_cut_from_the_line_is_the_signed_content(tmp_key: Path) -> None:
    for n in (1, 3):
        line = _line(tmp_key, n)
        r = json.loads(line)
        assert model.identity(r, line) == model.identity(r) == "sha256:" + __import__("hashlib").sha256(model.signed_part(r)).hexdigest()
    unsigned = model.canonical({k: v for k, v in json.loads(_line(tmp_key)).items() if k not in ("sig", "signer")})
    assert model.identity(json.loads(unsigned), unsigned) == model.identity(json.loads(unsigned))


def test_log_text_no_receipt_may_hold_is_replaced_so_the_receipt_stays_valid(tmp_path: Path) -> None:
    """A model name or session id from an agent's log with a control, bidi or zero-width character
    in it: the writer replaces those (U+FFFD) by the rule verify holds every line to, instead of
    writing a receipt no reader accepts (the whole commit's spend would be lost)."""
    from aispend.receipts.model import bad_char, receipt_text

    hostile = "claude-opus\x1b[31m\u202e\u200b\u2028x"
    assert receipt_text(hostile) == "claude-opus\ufffd[31m\ufffd\ufffd\ufffdx"
    assert receipt_text("plain-model ünïcode") == "plain-model ünïcode"
    claimed = [Claimed("k", "claude", "sess\x07ion", 1_772_355_600_000, hostile, 1000, 500, 0, 0, 0, 10_500_000, "p")]
    r = model.build(
        commit="a" * 40, tree="b" * 40, parents=[], author="dev@example.com", committed_s=1_772_355_600,
        claimed=claimed, prompts={("claude", "sess\x07ion"): (2, "sha256:" + "c" * 64)}, carried=[], carried_digests=[],
        pricing="p", version="0",
    )
    [s] = r["sessions"]
    assert s["session"] == "sess\ufffdion" and s["models"][0]["model"] == "claude-opus\ufffd[31m\ufffd\ufffd\ufffdx"
    assert s["prompts"] == 2  # the session's prompts still found under its cleaned id
    line = model.canonical(r)
    assert not any(map(bad_char, line)) and verify.form_problems(r, line) == []
