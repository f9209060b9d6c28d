"""Signing key files and allowed_signers, checked against the real ssh-keygen."""

from __future__ import annotations

import os
import stat
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
        AllowedSigner(("bob@example.com",), ("aispend-receipt",), OTHER_LINE),
        AllowedSigner(("Jane Doe",), None, PUB_LINE),
    ]
    assert problems == [
        (5, "unknown option 'cert-authority-not'"),
        (10, "missing key"),
        (11, "missing key"),
        (12, "unknown option 'frobnicate'"),
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
