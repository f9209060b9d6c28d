"""SSHSIG signing and verification, checked against the real ssh-keygen."""

from __future__ import annotations

import base64
import hashlib
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from aispend.receipts import sshsig
from aispend.receipts.keys import load_key
from aispend.receipts.sshsig import (
    NAMESPACE,
    SigError,
    armor,
    dearmor,
    load_public_key_line,
    public_key_line,
    sign,
    verify,
)

SSH_KEYGEN = shutil.which("ssh-keygen")
needs_ssh_keygen = pytest.mark.skipif(SSH_KEYGEN is None, reason="ssh-keygen is not installed")

# A fixed key (RFC 8032 test 1 secret) so that signatures are reproducible.
SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
KEY = Ed25519PrivateKey.from_private_bytes(SEED)
PUB_RAW = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
PUB_LINE = "ssh-ed25519 " + base64.b64encode(
    b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + PUB_RAW
).decode()
MESSAGE = b'{"commit":"0123abcd","usd":"1.25"}\n'
BLOB = sign(KEY, MESSAGE)


def s(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def build(
    *,
    magic: bytes = b"SSHSIG",
    version: int = 1,
    key: bytes = s(b"ssh-ed25519") + s(PUB_RAW),
    namespace: bytes = NAMESPACE.encode(),
    reserved: bytes = b"",
    hash_alg: bytes = b"sha512",
    message: bytes = MESSAGE,
    sig_type: bytes = b"ssh-ed25519",
    private: Ed25519PrivateKey = KEY,
) -> bytes:
    """An SSHSIG blob assembled by hand, with any field replaced."""
    h = hashlib.new(hash_alg.decode(), message).digest() if hash_alg in (b"sha256", b"sha512") else b"x"
    signed = b"SSHSIG" + s(namespace) + s(reserved) + s(hash_alg) + s(h)
    sig = s(sig_type) + s(private.sign(signed))
    return magic + struct.pack(">I", version) + s(key) + s(namespace) + s(reserved) + s(hash_alg) + s(sig)


def keygen(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    assert SSH_KEYGEN is not None
    return subprocess.run(
        [SSH_KEYGEN, *args], input=stdin.decode() if stdin is not None else None,
        capture_output=True, text=True, timeout=60,
    )


def make_ssh_key(path: Path, kind: str = "ed25519", comment: str = "dev@example.com") -> Path:
    """A key made by ssh-keygen itself (RSA at 1024 bits where allowed, to keep it quick)."""
    args = ["-q", "-t", kind, "-N", "", "-C", comment, "-f", str(path)]
    if kind == "rsa":
        p = keygen(*args, "-b", "1024")
        if p.returncode != 0:
            p = keygen(*args, "-b", "2048")
    else:
        p = keygen(*args)
    assert p.returncode == 0, p.stderr
    return path


def ssh_sign(key: Path, message_file: Path, *extra: str) -> str:
    p = keygen("-Y", "sign", "-f", str(key), "-n", NAMESPACE, *extra, str(message_file))
    assert p.returncode == 0, p.stderr
    return Path(str(message_file) + ".sig").read_text()


def ssh_verify(tmp_path: Path, armored: str, message: bytes, signers: str, principal: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "allowed_signers").write_text(signers)
    (tmp_path / "msg.sig").write_text(armored)
    return keygen(
        "-Y", "verify", "-f", str(tmp_path / "allowed_signers"), "-I", principal,
        "-n", NAMESPACE, "-s", str(tmp_path / "msg.sig"), stdin=message,
    )


# ------------------------------------------------------------------ our own format


def test_public_key_line_is_the_openssh_wire_form() -> None:
    assert public_key_line(KEY.public_key()) == PUB_LINE
    assert PUB_LINE.startswith("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI")
    # cryptography's own OpenSSH serialisation agrees.
    assert KEY.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH).decode() == PUB_LINE


def test_signature_blob_layout() -> None:
    assert BLOB[:6] == b"SSHSIG"
    assert BLOB[6:10] == b"\x00\x00\x00\x01"
    assert BLOB == build()  # the hand-built reference blob, field by field
    assert len(BLOB) == 6 + 4 + (4 + 51) + (4 + 15) + 4 + (4 + 6) + (4 + 83)
    assert BLOB == sign(KEY, MESSAGE)  # Ed25519 is deterministic


def test_sign_then_verify_returns_the_signer() -> None:
    assert verify(BLOB, MESSAGE) == PUB_LINE
    other = sign(KEY, b"x", namespace="file")
    assert verify(other, b"x", namespace="file") == PUB_LINE


def test_sign_refuses_empty_namespace() -> None:
    with pytest.raises(ValueError, match="namespace"):
        sign(KEY, MESSAGE, namespace="")


def test_armor_wraps_at_70_columns() -> None:
    text = armor(BLOB)
    lines = text.split("\n")
    assert lines[0] == "-----BEGIN SSH SIGNATURE-----"
    assert lines[-2:] == ["-----END SSH SIGNATURE-----", ""]
    body = lines[1:-2]
    assert [len(x) for x in body] == [70, 70, 70, 38]  # 185 bytes -> 248 base64 characters
    assert base64.b64decode("".join(body)) == BLOB
    assert dearmor(text) == BLOB


def test_armor_of_a_blob_filling_whole_lines() -> None:
    blob = bytes(105)  # exactly 140 base64 characters: no short last line, no blank line
    assert armor(blob) == (
        "-----BEGIN SSH SIGNATURE-----\n" + "A" * 70 + "\n" + "A" * 70 + "\n-----END SSH SIGNATURE-----\n"
    )


def test_dearmor_tolerates_whitespace_and_crlf() -> None:
    text = "\n  " + armor(BLOB).replace("\n", "\r\n") + "\n\ntrailing junk ignored, as ssh-keygen does"
    assert dearmor(text) == BLOB


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "not an armored SSH signature"),
        ("hello", "not an armored SSH signature"),
        ("-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n", "not an armored SSH signature"),
        ("-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n", "no END line"),
        ("-----BEGIN SSH SIGNATURE-----\nU1N*U0lH\n-----END SSH SIGNATURE-----\n", "bad base64"),
        ("-----BEGIN SSH SIGNATURE-----\nU1NIU0l\n-----END SSH SIGNATURE-----\n", "bad base64"),
        ("-----BEGIN SSH SIGNATURE-----\nU1NIé0lH\n-----END SSH SIGNATURE-----\n", "bad base64"),
        ("-----BEGIN SSH SIGNATURE-----\n-----END SSH SIGNATURE-----\n", "empty"),
    ],
)
def test_dearmor_rejects_garbage(text: str, reason: str) -> None:
    with pytest.raises(SigError, match=reason):
        dearmor(text)


def test_load_public_key_line() -> None:
    key = load_public_key_line(PUB_LINE + " someone@example.com  with spaces")
    assert key.public_bytes(Encoding.Raw, PublicFormat.Raw) == PUB_RAW
    assert public_key_line(load_public_key_line(PUB_LINE)) == PUB_LINE


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "not an OpenSSH public key line"),
        ("ssh-ed25519", "not an OpenSSH public key line"),
        ("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC", "unsupported key type 'ssh-rsa'"),
        ("ssh-ed25519 AAAA!!!!", "bad base64"),
        # right outer type, but the blob says ssh-rsa
        ("ssh-ed25519 " + base64.b64encode(s(b"ssh-rsa") + s(PUB_RAW)).decode(), "unsupported key type 'ssh-rsa'"),
        ("ssh-ed25519 " + base64.b64encode(s(b"ssh-ed25519") + s(PUB_RAW[:31])).decode(), "malformed public key"),
        ("ssh-ed25519 " + base64.b64encode(s(b"ssh-ed25519") + s(PUB_RAW) + b"x").decode(), "malformed public key"),
        ("ssh-ed25519 " + base64.b64encode(s(b"ssh-ed25519")).decode(), "malformed public key"),
    ],
)
def test_load_public_key_line_rejects(line: str, reason: str) -> None:
    with pytest.raises(SigError, match=reason):
        load_public_key_line(line)


# ---------------------------------------------------------------- verify failures


def test_wrong_namespace() -> None:
    with pytest.raises(SigError, match=r"^wrong namespace 'aispend-receipt'$"):
        verify(BLOB, MESSAGE, namespace="git")
    with pytest.raises(SigError, match=r"^wrong namespace 'file'$"):
        verify(sign(KEY, MESSAGE, namespace="file"), MESSAGE)


def test_flipped_signature_byte() -> None:
    bad = bytearray(BLOB)
    bad[-1] ^= 0x01  # last byte of the 64-byte Ed25519 signature
    with pytest.raises(SigError, match=r"^bad signature$"):
        verify(bytes(bad), MESSAGE)


def test_flipped_message_byte() -> None:
    msg = bytearray(MESSAGE)
    msg[3] ^= 0x20
    with pytest.raises(SigError, match=r"^bad signature$"):
        verify(BLOB, bytes(msg))
    with pytest.raises(SigError, match=r"^bad signature$"):
        verify(BLOB, MESSAGE + b"\n")


def test_other_key_in_blob() -> None:
    other = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    with pytest.raises(SigError, match=r"^bad signature$"):
        verify(build(key=s(b"ssh-ed25519") + s(other)), MESSAGE)


def test_every_truncation_is_rejected() -> None:
    for n in range(len(BLOB)):
        with pytest.raises(SigError) as exc:
            verify(BLOB[:n], MESSAGE)
        assert str(exc.value) == ("not an SSH signature" if n < 6 else "truncated"), n


@pytest.mark.parametrize(
    ("blob", "reason"),
    [
        (b"", "not an SSH signature"),
        (b"-----BEGIN SSH SIGNATURE-----", "not an SSH signature"),
        (build(magic=b"SSHSIH"), "not an SSH signature"),
        (build(version=2), "unsupported SSH signature version 2"),
        (build(hash_alg=b"md5"), "unsupported hash algorithm 'md5'"),
        (build(sig_type=b"rsa-sha2-512"), "signature type 'rsa-sha2-512' does not match key type"),
        (build(key=s(b"ssh-rsa") + s(b"\x01\x00\x01") + s(b"\x00" * 128)), "unsupported key type 'ssh-rsa'"),
        (build(key=s(b"ssh-ed25519") + s(PUB_RAW[:16])), "malformed public key"),
        (build(key=b"\x00\x00"), "malformed public key"),
        (BLOB + b"\x00", "trailing data after signature"),
        (build(reserved=b"future"), None),  # reserved contents are ignored (but signed)
    ],
)
def test_malformed_blobs(blob: bytes, reason: str | None) -> None:
    if reason is None:
        assert verify(blob, MESSAGE) == PUB_LINE
        return
    with pytest.raises(SigError) as exc:
        verify(blob, MESSAGE)
    assert str(exc.value) == reason


def test_sha256_hash_is_accepted() -> None:
    assert verify(build(hash_alg=b"sha256"), MESSAGE) == PUB_LINE
    # ...but the hash algorithm is part of what is signed: relabelling it breaks the signature.
    relabelled = BLOB.replace(s(b"sha512"), s(b"sha256"))
    with pytest.raises(SigError, match="bad signature"):
        verify(relabelled, MESSAGE)


def test_sig_error_is_a_value_error() -> None:
    assert issubclass(SigError, ValueError)


# ----------------------------------------------------------------------- fuzzing


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_only_raise_sig_error(data: bytes) -> None:
    with pytest.raises(SigError):
        verify(data, MESSAGE)
    with pytest.raises(SigError):
        verify(b"SSHSIG" + data, MESSAGE)


@st.composite
def mutations(draw: st.DrawFn) -> bytes:
    blob = bytearray(BLOB)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(blob)))
        op = draw(st.sampled_from(["set", "insert", "delete", "truncate"]))
        if op == "set" and i < len(blob):
            blob[i] = draw(st.integers(0, 255))
        elif op == "insert":
            blob[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del blob[i : i + draw(st.integers(1, 8))]
        else:
            del blob[i:]
    return bytes(blob)


@settings(max_examples=1000, deadline=None)
@given(mutations())
def test_mutated_blobs_only_raise_sig_error(blob: bytes) -> None:
    try:
        assert verify(blob, MESSAGE) == PUB_LINE
    except SigError:
        return
    assert blob == BLOB, "a mutated signature verified"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.booleans())
def test_dearmor_random_text_only_raises_sig_error(text: str, framed: bool) -> None:
    if framed:
        text = f"{sshsig.BEGIN}\n{text}\n{sshsig.END}\n"
    try:
        blob = dearmor(text)
    except SigError:
        return
    with pytest.raises(SigError):
        verify(blob, MESSAGE)


# ------------------------------------------------------------- against ssh-keygen


@needs_ssh_keygen
def test_our_signature_verifies_with_ssh_keygen(tmp_path: Path) -> None:
    signers = f'alice@example.com namespaces="{NAMESPACE}" {PUB_LINE}\n'
    good = ssh_verify(tmp_path, armor(BLOB), MESSAGE, signers, "alice@example.com")
    assert good.returncode == 0, good.stdout + good.stderr
    assert f'Good "{NAMESPACE}" signature for alice@example.com' in good.stdout + good.stderr

    bad = ssh_verify(tmp_path, armor(BLOB), MESSAGE.replace(b"1.25", b"9.25"), signers, "alice@example.com")
    assert bad.returncode != 0
    assert "Good" not in bad.stdout + bad.stderr

    other_ns = ssh_verify(tmp_path, armor(sign(KEY, MESSAGE, "file")), MESSAGE, signers, "alice@example.com")
    assert other_ns.returncode != 0


@needs_ssh_keygen
def test_ssh_keygen_signature_verifies_with_ours(tmp_path: Path) -> None:
    key = make_ssh_key(tmp_path / "id_ed25519")
    pub_line = " ".join((tmp_path / "id_ed25519.pub").read_text().split()[:2])
    (tmp_path / "msg").write_bytes(MESSAGE)
    armored = ssh_sign(key, tmp_path / "msg")

    blob = dearmor(armored)
    assert verify(blob, MESSAGE) == pub_line
    with pytest.raises(SigError, match="bad signature"):
        verify(blob, MESSAGE + b"x")
    with pytest.raises(SigError, match="wrong namespace"):
        verify(blob, MESSAGE, namespace="git")
    # Our armour is byte-for-byte ssh-keygen's, and with the same key (Ed25519 is
    # deterministic) our signature is byte-for-byte ssh-keygen's too.
    assert armor(blob) == armored
    assert armor(sign(load_key(key).private, MESSAGE)) == armored


@needs_ssh_keygen
def test_ssh_keygen_sha256_signature_verifies(tmp_path: Path) -> None:
    key = make_ssh_key(tmp_path / "k")
    (tmp_path / "msg").write_bytes(MESSAGE)
    blob = dearmor(ssh_sign(key, tmp_path / "msg", "-O", "hashalg=sha256"))
    assert s(b"sha256") in blob
    assert verify(blob, MESSAGE) == " ".join((tmp_path / "k.pub").read_text().split()[:2])


@needs_ssh_keygen
def test_rsa_signature_is_refused(tmp_path: Path) -> None:
    key = make_ssh_key(tmp_path / "id_rsa", "rsa")
    (tmp_path / "msg").write_bytes(MESSAGE)
    blob = dearmor(ssh_sign(key, tmp_path / "msg"))
    with pytest.raises(SigError) as exc:
        verify(blob, MESSAGE)
    assert str(exc.value) == "unsupported key type 'ssh-rsa'"


@needs_ssh_keygen
def test_ssh_keygen_rejects_our_tampered_blob(tmp_path: Path) -> None:
    bad = bytearray(BLOB)
    bad[-1] ^= 0x01
    signers = f"alice@example.com {PUB_LINE}\n"
    p = ssh_verify(tmp_path, armor(bytes(bad)), MESSAGE, signers, "alice@example.com")
    assert p.returncode != 0
