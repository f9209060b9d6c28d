"""``valid-after``/``valid-before`` decided exactly as the real ``ssh-keygen -Y verify``.

A real message signed by the real ``ssh-keygen -Y sign`` is verified by ssh-keygen with
``-Overify-time`` just before, at and just after each boundary of a validity window, and
``signer_allowed(..., when_s=...)`` must give the same verdict every time. Times written
without ``Z`` are local: TZ is set both for ssh-keygen and for this process.
"""

from __future__ import annotations

import calendar
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aispend.receipts.keys import parse_allowed_signers, signer_allowed
from aispend.receipts.sshsig import NAMESPACE, dearmor, verify

SSH_KEYGEN = shutil.which("ssh-keygen")
pytestmark = pytest.mark.skipif(SSH_KEYGEN is None, reason="ssh-keygen is not installed")

PRINCIPAL = "dev@example.com"
MESSAGE = b'{"commit":"0123abcd","usd":"1.25"}\n'
# POSIX TZ strings, so no tz database is needed. Summer time in both.
UTC = "UTC0"
BERLIN = "CET-1CEST,M3.5.0,M10.5.0/3"
NEW_YORK = "EST5EDT,M3.2.0,M11.1.0"


def utc(*fields: int) -> int:
    """Seconds since the epoch of a UTC date and time (year, month, day[, h, m, s])."""
    return calendar.timegm((*fields, *(0,) * (6 - len(fields)), 0, 0, 0))


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A directory holding ``msg`` and ``msg.sig`` (signed by ssh-keygen), and the signer's key."""
    assert SSH_KEYGEN is not None
    d = tmp_path_factory.mktemp("validity")
    keygen = [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", PRINCIPAL, "-f", str(d / "key")]
    subprocess.run(keygen, check=True, capture_output=True, timeout=60)
    (d / "msg").write_bytes(MESSAGE)
    sign = [SSH_KEYGEN, "-Y", "sign", "-f", str(d / "key"), "-n", NAMESPACE, str(d / "msg")]
    subprocess.run(sign, check=True, capture_output=True, timeout=60)
    public_line = verify(dearmor((d / "msg.sig").read_text()), MESSAGE)
    assert public_line == " ".join((d / "key.pub").read_text().split()[:2])
    return d, public_line


@pytest.fixture
def set_tz(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """``set_tz(tz)`` makes ``tz`` this process's local time zone until the test ends."""

    def set_to(tz: str) -> None:
        monkeypatch.setenv("TZ", tz)
        time.tzset()

    yield set_to
    monkeypatch.undo()  # restore TZ first, then re-read it
    time.tzset()


def ssh_keygen_verify(signed: tuple[Path, str], tmp_path: Path, line: str, tz: str, when_s: int | None) -> tuple[bool, str]:
    """ssh-keygen's verdict on ``line`` at ``when_s`` (None: now) under TZ=``tz``, and its output."""
    assert SSH_KEYGEN is not None
    d, _ = signed
    (tmp_path / "allowed_signers").write_text(line + "\n")
    args = [SSH_KEYGEN, "-Y", "verify", "-f", str(tmp_path / "allowed_signers"), "-I", PRINCIPAL,
            "-n", NAMESPACE, "-s", str(d / "msg.sig")]
    if when_s is not None:
        args.append("-Overify-time=" + time.strftime("%Y%m%d%H%M%SZ", time.gmtime(when_s)))
    env = {**os.environ, "TZ": tz, "LC_ALL": "C"}
    p = subprocess.run(args, input=MESSAGE, capture_output=True, env=env, timeout=60)
    out = (p.stdout + p.stderr).decode(errors="replace")
    assert p.returncode in (0, 255), out
    assert "Invalid" not in out, out  # our verify-time itself was accepted
    return p.returncode == 0, out


# (TZ, options, expected valid_after, expected valid_before): every boundary is checked
# one second before, at and one second after it.
WINDOWS = [
    (UTC, 'valid-after="20240315Z"', utc(2024, 3, 15), None),
    (UTC, 'valid-before="20240315Z"', None, utc(2024, 3, 15)),
    (UTC, 'valid-after="202403151230Z",valid-before="20240316123045Z"', utc(2024, 3, 15, 12, 30), utc(2024, 3, 16, 12, 30, 45)),
    (UTC, 'valid-after="20240315",valid-before="202403161230"', utc(2024, 3, 15), utc(2024, 3, 16, 12, 30)),
    (UTC, 'valid-after="20240101Z",valid-before="20240101000001Z"', utc(2024, 1, 1), utc(2024, 1, 1, 0, 0, 1)),
    (UTC, 'VALID-AFTER="20240315Z"', utc(2024, 3, 15), None),
    (UTC, 'valid-after="20240231Z"', utc(2024, 3, 2), None),  # day overflow, normalised
    (UTC, 'valid-before="20241231235960Z"', None, utc(2025, 1, 1)),  # second 60
    (UTC, 'valid-before="20241231235961Z"', None, utc(2025, 1, 1, 0, 0, 1)),
    (UTC, 'valid-after="2024 3 5Z"', utc(2024, 3, 5), None),  # strptime skips the spaces
    (UTC, 'valid-after="19700101000001Z"', 1, None),
    (UTC, 'valid-after="19691231235961Z"', 1, None),
    (BERLIN, 'valid-after="20240315Z"', utc(2024, 3, 15), None),  # Z: TZ does not matter
    (BERLIN, 'valid-before="20240315z"', None, utc(2024, 3, 15)),
    (BERLIN, 'valid-after="20240315UTC"', utc(2024, 3, 15), None),
    (BERLIN, 'valid-after="20240115"', utc(2024, 1, 14, 23), None),  # winter: +1
    (BERLIN, 'valid-after="20240701"', utc(2024, 6, 30, 23), None),  # summer: still +1 (tm_isdst 0)
    (BERLIN, 'valid-before="202407011200"', None, utc(2024, 7, 1, 11)),
    (BERLIN, 'valid-after="20240315083000",valid-before="20240915180000"', utc(2024, 3, 15, 7, 30), utc(2024, 9, 15, 17)),
    (BERLIN, 'valid-after="202403310230"', utc(2024, 3, 31, 1, 30), None),  # in the spring-forward gap
    (NEW_YORK, 'valid-before="20241103013000"', None, utc(2024, 11, 3, 6, 30)),  # the repeated hour
    (NEW_YORK, 'valid-after="20240610",valid-before="20240611"', utc(2024, 6, 10, 5), utc(2024, 6, 11, 5)),
    (NEW_YORK, 'valid-after="196912312300"', utc(1970, 1, 1, 4), None),  # local 1969, after the epoch
    (NEW_YORK, 'namespaces="git,aispend-*",valid-after="20240610Z"', utc(2024, 6, 10), None),
]


@pytest.mark.parametrize(("tz", "options", "after", "before"), WINDOWS, ids=[f"{w[0][:3]}-{w[1]}" for w in WINDOWS])
def test_window_boundaries_agree_with_ssh_keygen(
    signed: tuple[Path, str], tmp_path: Path, set_tz: Callable[[str], None], tz: str, options: str, after: int | None, before: int | None
) -> None:
    _, key = signed
    line = f"{PRINCIPAL} {options} {key}"
    set_tz(tz)
    signers, problems = parse_allowed_signers(line + "\n")
    assert problems == []
    assert (signers[0].valid_after, signers[0].valid_before) == (after, before)
    boundaries = [b for b in (after, before) if b is not None]
    # ssh-keygen refuses a verify-time at or before the epoch, so those are not compared.
    for when_s in sorted({b + d for b in boundaries for d in (-1, 0, 1)} - {-1, 0}):
        theirs, out = ssh_keygen_verify(signed, tmp_path, line, tz, when_s)
        ours = signer_allowed(signers, PRINCIPAL, key, when_s=when_s)
        assert ours is theirs, f"at {when_s}: ssh-keygen says {theirs}: {out}"
        # Both ends are inclusive.
        assert ours is ((after is None or when_s >= after) and (before is None or when_s <= before))


# Lines ssh-keygen refuses as a whole ("bad options"): never allowed, and reported by us.
REFUSED = [
    (UTC, 'valid-after="20240315Z",valid-before="20240315Z"'),  # empty window
    (UTC, 'valid-after="20240316Z",valid-before="20240315Z"'),
    (BERLIN, 'valid-after="20240315",valid-before="20240315000000"'),
    (UTC, 'valid-after="20240315Z",valid-after="20240101Z"'),
    (UTC, 'valid-before="20240315Z",valid-before="20300101Z"'),
    (UTC, 'valid-before="2024031"'),
    (UTC, 'valid-before="202403151"'),
    (UTC, 'valid-before="20240315ZZ"'),
    (UTC, 'valid-before="20240315ZUTC"'),
    (UTC, 'valid-after=""'),
    (UTC, 'valid-after="19700101Z"'),
    (UTC, 'valid-after="19700101"'),
    (NEW_YORK, 'valid-after="19691231190000"'),  # exactly the epoch in New York
    (UTC, 'valid-after="19691231Z"'),
    (UTC, 'valid-after="00000101Z"'),
    (UTC, 'valid-after="20241301Z"'),
    (UTC, 'valid-after="20240100Z"'),
    (UTC, 'valid-after="20240101240000Z"'),
    (UTC, 'valid-after="20240101006000Z"'),
    (UTC, 'valid-after="20240101000062Z"'),
    (UTC, 'valid-after="2024+3+5Z"'),
    (UTC, 'valid-after="+2024031Z"'),
    (UTC, 'valid-after="20240 01Z"'),
    (UTC, 'valid-after="2024031 Z"'),
    (UTC, "valid-after=20240315Z"),
    (UTC, "valid-after"),
]


@pytest.mark.parametrize(("tz", "options"), REFUSED, ids=[f"{r[0][:3]}-{r[1]}" for r in REFUSED])
def test_refused_lines_agree_with_ssh_keygen(
    signed: tuple[Path, str], tmp_path: Path, set_tz: Callable[[str], None], tz: str, options: str
) -> None:
    _, key = signed
    line = f"{PRINCIPAL} {options} {key}"
    set_tz(tz)
    signers, problems = parse_allowed_signers(line + "\n")
    assert signers == [] and len(problems) == 1
    for when_s in (utc(2024, 3, 15), utc(2024, 6, 1)):
        theirs, out = ssh_keygen_verify(signed, tmp_path, line, tz, when_s)
        assert not theirs and "bad options" in out, out
        assert not signer_allowed(signers, PRINCIPAL, key, when_s=when_s)


@pytest.mark.parametrize(
    "options",
    [
        'valid-before="20200101Z"',
        'valid-after="29990101Z"',
        'valid-after="20200101Z",valid-before="29990101Z"',
        'valid-after="20200101",valid-before="29990101"',
    ],
)
def test_default_time_is_now_as_for_ssh_keygen(signed: tuple[Path, str], tmp_path: Path, set_tz: Callable[[str], None], options: str) -> None:
    _, key = signed
    line = f"{PRINCIPAL} {options} {key}"
    set_tz(BERLIN)
    signers, problems = parse_allowed_signers(line + "\n")
    assert problems == []
    theirs, out = ssh_keygen_verify(signed, tmp_path, line, BERLIN, None)
    assert signer_allowed(signers, PRINCIPAL, key) is theirs, out


def test_a_bad_line_does_not_hide_the_next(signed: tuple[Path, str], tmp_path: Path) -> None:
    _, key = signed
    text = f'{PRINCIPAL} valid-after="bad" {key}\n{PRINCIPAL} valid-before="20240315Z" {key}'
    signers, problems = parse_allowed_signers(text + "\n")
    assert problems == [(1, "invalid valid-after time")]
    for when_s, expected in ((utc(2024, 3, 15), True), (utc(2024, 3, 15) + 1, False)):
        theirs, out = ssh_keygen_verify(signed, tmp_path, text, UTC, when_s)
        assert theirs is expected, out
        assert signer_allowed(signers, PRINCIPAL, key, when_s=when_s) is expected
