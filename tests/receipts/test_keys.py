"""Signing key files and allowed_signers, checked against the real ssh-keygen."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aispend.errors import AispendError
from aispend.receipts.keys import (
    AllowedSigner,
    KeyFileError,
    SigningKey,
    allowed_signers_line,
    create_key,
    load_key,
    parse_allowed_signers,
    permissions_problem,
    signer_allowed,
)
from aispend.receipts.sshsig import NAMESPACE, armor, dearmor, public_key_line, sign, verify
from tests.receipts.test_sshsig import PUB_LINE, keygen, make_ssh_key, needs_ssh_keygen, ssh_sign, ssh_verify

MESSAGE = b"receipt body\n"
OTHER_LINE = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGJvYmJvYmJvYmJvYmJvYmJvYmJvYmJvYmJvYmJvYmJvYmI="


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


# ---------------------------------------------------------------------- create_key


def test_create_key_writes_private_and_public_files(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "signing_key"
    key = create_key(path, "alice@example.com")

    assert isinstance(key, SigningKey) and key.path == path
    assert key.public_line == public_key_line(key.private.public_key())
    assert key.public_line.startswith("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI") and len(key.public_line.split()) == 2
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    pub = path.with_name("signing_key.pub")
    assert pub.read_text() == f"{key.public_line} alice@example.com\n"
    assert mode(pub) == 0o644
    assert path.read_bytes().startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----\n")
    assert sorted(os.listdir(path.parent)) == ["signing_key", "signing_key.pub"]  # no temp files left
    assert permissions_problem(path) is None

    loaded = load_key(path)
    assert loaded.public_line == key.public_line
    assert verify(sign(loaded.private, MESSAGE), MESSAGE) == key.public_line


def test_create_key_modes_do_not_depend_on_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        create_key(tmp_path / "k", "c")
    finally:
        os.umask(old)
    assert mode(tmp_path / "k") == 0o600
    assert mode(tmp_path / "k.pub") == 0o644


def test_create_key_leaves_an_existing_parent_alone(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir(mode=0o755)
    os.chmod(tmp_path / "d", 0o755)
    create_key(tmp_path / "d" / "k", "")
    assert mode(tmp_path / "d") == 0o755
    assert (tmp_path / "d" / "k.pub").read_text().count(" ") == 1  # empty comment: no trailing space


def test_create_key_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "k"
    create_key(path, "first")
    before = path.read_bytes(), (tmp_path / "k.pub").read_bytes()
    with pytest.raises(KeyFileError, match="already exists"):
        create_key(path, "second")
    assert (path.read_bytes(), (tmp_path / "k.pub").read_bytes()) == before

    (tmp_path / "only.pub").write_text("something\n")
    with pytest.raises(KeyFileError, match=r"only\.pub already exists"):
        create_key(tmp_path / "only", "c")
    assert not (tmp_path / "only").exists()


def test_create_key_rejects_multiline_comment(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="line break"):
        create_key(tmp_path / "k", "a\nb")
    assert not (tmp_path / "k").exists()


def test_key_file_error_is_an_aispend_error() -> None:
    assert issubclass(KeyFileError, AispendError)


@needs_ssh_keygen
def test_created_key_is_a_real_openssh_key(tmp_path: Path) -> None:
    key = create_key(tmp_path / "k", "alice@example.com")
    p = keygen("-y", "-f", str(key.path))
    assert p.returncode == 0, p.stderr
    assert " ".join(p.stdout.split()[:2]) == key.public_line

    (tmp_path / "msg").write_bytes(MESSAGE)
    armored = ssh_sign(key.path, tmp_path / "msg")
    assert verify(dearmor(armored), MESSAGE) == key.public_line
    assert armored == armor(sign(key.private, MESSAGE))  # deterministic Ed25519: identical bytes


# ------------------------------------------------------------------------ load_key


@needs_ssh_keygen
def test_load_ssh_keygen_key(tmp_path: Path) -> None:
    path = make_ssh_key(tmp_path / "id_ed25519")
    key = load_key(path)
    assert key.public_line == " ".join((tmp_path / "id_ed25519.pub").read_text().split()[:2])
    assert key.path == path


def test_load_pkcs8_pem_key(tmp_path: Path) -> None:
    private = Ed25519PrivateKey.generate()
    (tmp_path / "k.pem").write_bytes(
        private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    assert load_key(tmp_path / "k.pem").public_line == public_key_line(private.public_key())


def test_load_encrypted_pkcs8_key(tmp_path: Path) -> None:
    private = Ed25519PrivateKey.generate()
    enc = serialization.BestAvailableEncryption(b"secret")
    (tmp_path / "k.pem").write_bytes(private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc))
    with pytest.raises(KeyFileError, match="is encrypted; aispend needs an unencrypted key"):
        load_key(tmp_path / "k.pem")


@needs_ssh_keygen
def test_load_encrypted_ssh_keygen_key(tmp_path: Path) -> None:
    # Detected from the key's cleartext header: cryptography alone cannot even try to
    # decrypt it (bcrypt KDF needs the separate bcrypt package), so it must not be "garbage".
    p = keygen("-q", "-t", "ed25519", "-N", "secret", "-f", str(tmp_path / "k"))
    assert p.returncode == 0, p.stderr
    with pytest.raises(KeyFileError) as exc:
        load_key(tmp_path / "k")
    assert str(exc.value) == f"signing key {tmp_path / 'k'} is encrypted; aispend needs an unencrypted key"


@needs_ssh_keygen
@pytest.mark.parametrize(
    ("kind", "extra", "word"),
    [
        ("rsa", [], "an RSA"),
        ("rsa", ["-N", "secret"], "an RSA"),  # the key type wins over "encrypted": it is in the clear
        ("rsa", ["-m", "PEM"], "an RSA"),
        ("ecdsa", [], "an ECDSA"),
        ("ecdsa", ["-m", "PKCS8"], "an ECDSA"),
    ],
)
def test_load_wrong_key_type(tmp_path: Path, kind: str, extra: list[str], word: str) -> None:
    path = tmp_path / "k"
    args = ["-q", "-t", kind, "-f", str(path), *(extra if "-N" in extra else ["-N", "", *extra])]
    p = keygen(*args, "-b", "2048") if kind == "rsa" else keygen(*args)
    assert p.returncode == 0, p.stderr
    with pytest.raises(KeyFileError) as exc:
        load_key(path)
    assert str(exc.value) == f"signing key {path} is {word} key; aispend signs with ed25519 keys"


def test_load_missing_key(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match=r"signing key .*nope does not exist"):
        load_key(tmp_path / "nope")


def test_load_directory(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="is a directory"):
        load_key(tmp_path)


def test_load_unreadable_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "k"
    create_key(path, "c")

    def denied(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(KeyFileError, match=r"cannot read signing key .*: Permission denied"):
        load_key(path)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"hello world\n",
        b"\x00\xff" * 50,
        b"-----BEGIN OPENSSH PRIVATE KEY-----\nnot base64!\n-----END OPENSSH PRIVATE KEY-----\n",
        b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----\n",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ],
)
def test_load_garbage(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "k").write_bytes(content)
    with pytest.raises(KeyFileError, match=r"is not a private key \(expected an OpenSSH or PEM ed25519 key\)"):
        load_key(tmp_path / "k")


def test_load_public_key_by_mistake(tmp_path: Path) -> None:
    (tmp_path / "k.pub").write_text(PUB_LINE + " me\n")
    with pytest.raises(KeyFileError, match="is a public key; aispend needs the private key file"):
        load_key(tmp_path / "k.pub")


@pytest.mark.skipif(os.name == "nt", reason="no POSIX modes")
@pytest.mark.parametrize(
    ("file_mode", "problem"),
    [
        (0o600, None),
        (0o400, None),
        (0o644, "mode 0644: readable by group and others"),
        (0o640, "mode 0640: readable by group"),
        (0o604, "mode 0604: readable by others"),
        (0o620, "mode 0620: writable by group"),
        (0o601, "mode 0601: accessible by others"),
    ],
)
def test_permissions_problem(tmp_path: Path, file_mode: int, problem: str | None) -> None:
    path = tmp_path / "k"
    create_key(path, "c")
    path.chmod(file_mode)
    assert permissions_problem(path) == problem
    assert load_key(path).public_line  # loose permissions never stop loading


def test_permissions_problem_missing_file(tmp_path: Path) -> None:
    assert permissions_problem(tmp_path / "nope") is None


# ----------------------------------------------------------------- allowed signers


def test_allowed_signers_line() -> None:
    assert allowed_signers_line("alice@example.com", PUB_LINE + " a comment") == (
        f'alice@example.com namespaces="aispend-receipt" {PUB_LINE}'
    )
    assert allowed_signers_line("Jane Doe", PUB_LINE).startswith('"Jane Doe" namespaces=')
    for bad in ("", 'a"b', "a\nb"):
        with pytest.raises(ValueError):
            allowed_signers_line(bad, PUB_LINE)


@pytest.fixture
def tz_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is UTC for the test (for times written without ``Z``)."""
    monkeypatch.setenv("TZ", "UTC0")
    time.tzset()
    yield
    monkeypatch.undo()  # restore TZ before re-reading it, not after
    time.tzset()


@pytest.mark.usefixtures("tz_utc")
def test_parse_allowed_signers() -> None:
    text = f"""\
# a comment

alice@example.com {PUB_LINE} alice's laptop
  *@example.com,!mallory@example.com namespaces="git,aispend-*" {OTHER_LINE}
"Jane Doe" cert-authority-not,namespaces="x" {PUB_LINE}
bob@example.com valid-after="20240101",valid-before="20300101Z",namespaces="aispend-receipt" {OTHER_LINE}
ca@example.com cert-authority {PUB_LINE}
ca2@example.com namespaces="a b",cert-authority {PUB_LINE}
"Jane Doe" {PUB_LINE}
lonely@example.com
nokey@example.com namespaces="x"
badopt@example.com frobnicate {PUB_LINE}
unquoted@example.com namespaces=x {PUB_LINE}
twice@example.com namespaces="a",namespaces="b" {PUB_LINE}
badkey@example.com ssh-ed25519 !!!!
mismatch@example.com ssh-rsa {PUB_LINE.split()[1]}
quote@example.com namespaces="unterminated {PUB_LINE}
empty@example.com, {PUB_LINE}
"""
    signers, problems = parse_allowed_signers(text)
    assert signers == [
        AllowedSigner(("alice@example.com",), None, PUB_LINE),
        AllowedSigner(("*@example.com", "!mallory@example.com"), ("git", "aispend-*"), OTHER_LINE),
        AllowedSigner(("bob@example.com",), ("aispend-receipt",), OTHER_LINE, 1704067200, 1893456000),
        AllowedSigner(("Jane Doe",), None, PUB_LINE),
    ]
    assert problems == [
        (5, "unknown option"),
        (10, "missing key"),
        (11, "missing key"),
        (12, "unknown option"),
        (13, "option namespaces needs a quoted value"),
        (14, 'multiple "namespaces" options'),
        (15, "invalid key"),
        (16, "invalid key"),
        (17, "unterminated quote"),
        (18, "empty principal"),
    ]


def test_parse_empty() -> None:
    assert parse_allowed_signers("") == ([], [])
    assert parse_allowed_signers("\n# only comments\n   \n") == ([], [])


@pytest.mark.usefixtures("tz_utc")
@pytest.mark.parametrize(
    ("options", "after", "before"),
    [
        ('valid-after="20240315"', 1710460800, None),
        ('valid-after="20240315Z"', 1710460800, None),
        ('valid-after="20240315z"', 1710460800, None),
        ('valid-after="20240315UTC"', 1710460800, None),
        ('valid-before="202403151230Z"', None, 1710505800),
        ('valid-before="20240315123045Z"', None, 1710505845),
        ('Valid-Before="20240315123045Z"', None, 1710505845),  # option names ignore case
        ('valid-after="20240231Z"', 1709337600, None),  # normalised like timegm(): 2 March
        ('valid-after="20240315000060Z"', 1710460860, None),  # strptime allows seconds 60, 61
        ('valid-after="2024 3 5Z"', 1709596800, None),  # strptime skips space before a number
        ('valid-after="19700101000001Z"', 1, None),
        ('valid-after="20240101Z",valid-before="20240101000001Z"', 1704067200, 1704067201),
        ('namespaces="x",valid-before="20300101Z",valid-after="20240101Z"', 1704067200, 1893456000),
    ],
)
def test_parse_validity_window(options: str, after: int | None, before: int | None) -> None:
    signers, problems = parse_allowed_signers(f"a@x {options} {PUB_LINE}\n")
    assert problems == []
    assert (signers[0].valid_after, signers[0].valid_before) == (after, before)


def test_parse_validity_uses_local_time_with_standard_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    # As ssh-keygen's mktime() with tm_isdst 0: in summer the zone's standard offset
    # (+1 for Central Europe), not summer time (+2).
    monkeypatch.setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3")
    time.tzset()
    try:
        text = f'a@x valid-after="20240115",valid-before="202407011200" {PUB_LINE}\n'
        signers, problems = parse_allowed_signers(text)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert problems == []
    assert (signers[0].valid_after, signers[0].valid_before) == (1705273200, 1719831600)


@pytest.mark.usefixtures("tz_utc")
@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ('valid-after="2024031"', "invalid valid-after time"),
        ('valid-after=""', "invalid valid-after time"),
        ('valid-after="20240315ZZ"', "invalid valid-after time"),
        ('valid-after="20241301Z"', "invalid valid-after time"),
        ('valid-after="20240100Z"', "invalid valid-after time"),
        ('valid-after="20240101240000Z"', "invalid valid-after time"),
        ('valid-after="20240101000062Z"', "invalid valid-after time"),
        ('valid-after="2024+3+5Z"', "invalid valid-after time"),
        ('valid-after="20240 01Z"', "invalid valid-after time"),  # space after a digit
        ('valid-after="2024031\u0665Z"', "invalid valid-after time"),  # a non-ASCII digit
        ('valid-after="19700101Z"', "invalid valid-after time"),  # 0: ssh's "no limit"
        ('valid-after="19700101"', "invalid valid-after time"),  # 0 in UTC too
        ('valid-before="19691231Z"', "invalid valid-before time"),
        ('valid-before="00000101Z"', "invalid valid-before time"),
        ("valid-before=20240315Z", "option valid-before needs a quoted time"),
        ("valid-before", "unknown option"),
        ('valid-after="20240315Z",valid-after="20240316Z"', 'multiple "valid-after" options'),
        ('valid-before="20240315Z",VALID-BEFORE="20240316Z"', 'multiple "valid-before" options'),
        ('valid-after="20240315Z",valid-before="20240315Z"', "valid-before is not after valid-after"),
        ('valid-before="20240314Z",valid-after="20240315Z"', "valid-before is not after valid-after"),
        ('cert-authority,valid-after="x"', "invalid valid-after time"),
    ],
)
def test_parse_bad_validity(options: str, reason: str) -> None:
    assert parse_allowed_signers(f"a@x {options} {PUB_LINE}\n") == ([], [(1, reason)])


MARKER = "Zq9Marker"  # mixed case: an option name is lower-cased before use
KNOWN_REASONS = {
    "missing key", "missing key data", "empty principal", "bad quoting in principals", "unterminated quote",
    "unknown option", "invalid key", "option namespaces needs a quoted value", 'multiple "namespaces" options',
    "option valid-after needs a quoted time", "option valid-before needs a quoted time",
    "invalid valid-after time", "invalid valid-before time",
    'multiple "valid-after" options', 'multiple "valid-before" options', "valid-before is not after valid-after",
}


def test_problems_never_echo_the_file() -> None:
    m, key = MARKER, PUB_LINE
    lines = [
        f"{m}@x frobnicate{m} {key}",
        f'a@x {m}="x" {key}',
        f"a@x {m} {key}",
        f"a@x {m},namespaces=\"x\" {key}",
        f"a@x cert-authority={m} {key}",
        f"a@x namespaces={m} {key}",
        f'a@x namespaces="{m}",namespaces="{m}" {key}',
        f'a@x valid-after="{m}" {key}',
        f"a@x valid-after={m} {key}",
        f'a@x valid-before="2024{m}" {key}',
        f'a@x valid-before="{m}"{m} {key}',
        f'a@x valid-after="20240101Z",valid-after="{m}" {key}',
        f'a@x valid-after="20240102Z",valid-before="20240101Z",{m} {key}',
        f"a@x ssh-ed25519 {m}",
        f"a@x ssh-{m} {key.split()[1]}",
        f"a@x ssh-rsa {key.split()[1]} {m}",
        f'"{m} {key}',
        f'"{m}"{m} {key}',
        f"{m}",
        f"{m}, {key}",
        f'a@x namespaces="{m} {key}',
    ]
    signers, problems = parse_allowed_signers("\n".join(lines) + "\n")
    assert signers == []
    assert [n for n, _ in problems] == list(range(1, len(lines) + 1))  # every line is refused...
    for _, reason in problems:  # ...with a fixed phrase
        assert MARKER.lower() not in reason.lower()
        assert reason in KNOWN_REASONS, reason


@pytest.mark.parametrize(
    ("when_s", "allowed"),
    [(1704067199, False), (1704067200, True), (1735689600, True), (1735689601, False)],
)
def test_signer_allowed_inside_the_window_only(when_s: int, allowed: bool) -> None:
    line = f'a@x valid-after="20240101Z",valid-before="20250101Z" {PUB_LINE}\n'
    signers, _ = parse_allowed_signers(line)
    assert signer_allowed(signers, "a@x", PUB_LINE, when_s=when_s) is allowed
    assert signer_allowed(signers, "a@x", PUB_LINE, NAMESPACE, when_s) is allowed


def test_signer_allowed_defaults_to_now() -> None:
    expired, _ = parse_allowed_signers(f'a@x valid-before="20200101Z" {PUB_LINE}\n')
    future, _ = parse_allowed_signers(f'a@x valid-after="29990101Z" {PUB_LINE}\n')
    current, _ = parse_allowed_signers(f'a@x valid-after="20200101Z",valid-before="29990101Z" {PUB_LINE}\n')
    assert not signer_allowed(expired, "a@x", PUB_LINE)
    assert not signer_allowed(future, "a@x", PUB_LINE)
    assert signer_allowed(current, "a@x", PUB_LINE)
    assert signer_allowed(expired, "a@x", PUB_LINE, when_s=1500000000)


def test_a_retired_line_does_not_hide_a_current_one() -> None:
    text = f'a@x valid-before="20200101Z" {PUB_LINE}\na@x valid-after="20200101Z" {PUB_LINE}\n'
    signers, problems = parse_allowed_signers(text)
    assert problems == []
    assert signer_allowed(signers, "a@x", PUB_LINE, when_s=1500000000)  # the first line
    assert signer_allowed(signers, "a@x", PUB_LINE, when_s=1600000000)  # the second line
    assert not signer_allowed(signers[:1], "a@x", PUB_LINE, when_s=1600000000)


@pytest.mark.parametrize(
    ("line", "principal", "key", "namespace", "allowed"),
    [
        (f"alice@example.com {PUB_LINE}", "alice@example.com", PUB_LINE, NAMESPACE, True),
        (f"alice@example.com {PUB_LINE}", "alice@example.com", PUB_LINE + " any comment", NAMESPACE, True),
        (f"alice@example.com {PUB_LINE} its comment", "alice@example.com", PUB_LINE, "git", True),
        (f"alice@example.com {PUB_LINE}", "bob@example.com", PUB_LINE, NAMESPACE, False),
        (f"alice@example.com {PUB_LINE}", "alice@example.com", OTHER_LINE, NAMESPACE, False),
        (f"Alice@example.com {PUB_LINE}", "alice@example.com", PUB_LINE, NAMESPACE, False),  # case-sensitive
        (f"*@example.com {PUB_LINE}", "anyone@example.com", PUB_LINE, NAMESPACE, True),
        (f"*@example.com {PUB_LINE}", "anyone@example.org", PUB_LINE, NAMESPACE, False),
        (f"a?c@x {PUB_LINE}", "abc@x", PUB_LINE, NAMESPACE, True),
        (f"a?c@x {PUB_LINE}", "abbc@x", PUB_LINE, NAMESPACE, False),
        (f"[ab]@x {PUB_LINE}", "a@x", PUB_LINE, NAMESPACE, False),  # no character classes in ssh
        (f"[ab]@x {PUB_LINE}", "[ab]@x", PUB_LINE, NAMESPACE, True),
        (f"bob@x,alice@x {PUB_LINE}", "alice@x", PUB_LINE, NAMESPACE, True),
        (f"*,!mallory@x {PUB_LINE}", "alice@x", PUB_LINE, NAMESPACE, True),
        (f"*,!mallory@x {PUB_LINE}", "mallory@x", PUB_LINE, NAMESPACE, False),
        (f"!mallory@x,* {PUB_LINE}", "mallory@x", PUB_LINE, NAMESPACE, False),  # order does not matter
        (f"!mallory@x {PUB_LINE}", "alice@x", PUB_LINE, NAMESPACE, False),  # negation alone allows no one
        (f'a@x namespaces="aispend-receipt" {PUB_LINE}', "a@x", PUB_LINE, NAMESPACE, True),
        (f'a@x namespaces="git,file" {PUB_LINE}', "a@x", PUB_LINE, NAMESPACE, False),
        (f'a@x namespaces="git,aispend-*" {PUB_LINE}', "a@x", PUB_LINE, NAMESPACE, True),
        (f'a@x namespaces="*,!aispend-receipt" {PUB_LINE}', "a@x", PUB_LINE, NAMESPACE, False),
        (f"a@x cert-authority {PUB_LINE}", "a@x", PUB_LINE, NAMESPACE, False),
        (f'"Jane Doe" {PUB_LINE}', "Jane Doe", PUB_LINE, NAMESPACE, True),
    ],
)
def test_signer_allowed(line: str, principal: str, key: str, namespace: str, allowed: bool) -> None:
    signers, problems = parse_allowed_signers(line + "\n")
    assert problems == []
    assert signer_allowed(signers, principal, key, namespace) is allowed


def test_signer_allowed_looks_at_every_line() -> None:
    text = f"alice@x namespaces=\"git\" {PUB_LINE}\nalice@x {OTHER_LINE}\nalice@x {PUB_LINE}\n"
    signers, _ = parse_allowed_signers(text)
    assert signer_allowed(signers, "alice@x", PUB_LINE)
    assert not signer_allowed(signers[:2], "alice@x", PUB_LINE)
    assert not signer_allowed([], "alice@x", PUB_LINE)


# Each (allowed_signers line, principal) pair is judged by both signer_allowed and
# ssh-keygen -Y verify on a valid signature by KEY in our namespace: they must agree.
AGREEMENT_CASES = [
    ("{principal_field} {key}", "alice@example.com"),
    ('alice@example.com namespaces="aispend-receipt" {key}', "alice@example.com"),
    ('alice@example.com namespaces="git" {key}', "alice@example.com"),
    ('alice@example.com namespaces="git,aispend-*" {key}', "alice@example.com"),
    ("*@example.com {key}", "alice@example.com"),
    ("*@example.com,!alice@example.com {key}", "alice@example.com"),
    ("!alice@example.com,* {key}", "bob@example.com"),
    ("a?ice@example.com {key}", "alice@example.com"),
    ("[a]lice@example.com {key}", "alice@example.com"),
    ("ALICE@example.com {key}", "alice@example.com"),
    ("bob@example.com {key}", "alice@example.com"),
    ("alice@example.com cert-authority {key}", "alice@example.com"),
    ('alice@example.com valid-after="20200101" {key}', "alice@example.com"),
    ('"Jane Doe" {key}', "Jane Doe"),
    ("alice@example.com {other}", "alice@example.com"),
]


@needs_ssh_keygen
@pytest.mark.parametrize(("template", "principal"), AGREEMENT_CASES)
def test_signer_allowed_agrees_with_ssh_keygen(tmp_path: Path, template: str, principal: str) -> None:
    from tests.receipts.test_sshsig import BLOB, MESSAGE as SIGNED

    line = template.format(principal_field="alice@example.com", key=PUB_LINE, other=OTHER_LINE)
    signers, problems = parse_allowed_signers(line + "\n")
    assert problems == []
    ours = signer_allowed(signers, principal, verify(BLOB, SIGNED))
    theirs = ssh_verify(tmp_path, armor(BLOB), SIGNED, line + "\n", principal)
    assert ours is (theirs.returncode == 0), theirs.stdout + theirs.stderr


@needs_ssh_keygen
def test_allowed_signers_line_round_trip_with_ssh_keygen(tmp_path: Path) -> None:
    key = create_key(tmp_path / "keys" / "k", "alice")
    blob = sign(key.private, MESSAGE)
    for principal in ("alice@example.com", "Jane Doe"):
        line = allowed_signers_line(principal, key.public_line)
        p = ssh_verify(tmp_path, armor(blob), MESSAGE, line + "\n", principal)
        assert p.returncode == 0, p.stdout + p.stderr
        assert f'Good "{NAMESPACE}" signature for {principal}' in p.stdout + p.stderr
        signers, problems = parse_allowed_signers(line + "\n")
        assert problems == [] and signer_allowed(signers, principal, verify(blob, MESSAGE))
        # ...and ssh-keygen honours the namespace restriction we wrote.
        other = ssh_verify(tmp_path, armor(sign(key.private, MESSAGE, "git")), MESSAGE, line + "\n", principal)
        assert other.returncode != 0
        # ...and refuses someone else.
        assert ssh_verify(tmp_path, armor(blob), MESSAGE, line + "\n", "mallory@example.com").returncode != 0
