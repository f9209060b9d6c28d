"""SSHSIG signatures (``ssh-keygen -Y sign``) for Ed25519 keys.

Implements OpenSSH's PROTOCOL.sshsig with nothing but ``cryptography`` and the
standard library, so receipts signed here verify with ``ssh-keygen -Y verify``
and signatures made by ``ssh-keygen -Y sign`` verify here.

Wire format (all "string"s are a uint32 big-endian length then the bytes)::

    blob   = "SSHSIG" uint32(1) string(publickey) string(namespace)
             string(reserved) string(hash_algorithm) string(signature)
    signed = "SSHSIG" string(namespace) string(reserved)
             string(hash_algorithm) string(H(message))
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

NAMESPACE = "aispend-receipt"
MAGIC = b"SSHSIG"
VERSION = 1
KEY_TYPE = "ssh-ed25519"
BEGIN = "-----BEGIN SSH SIGNATURE-----"
END = "-----END SSH SIGNATURE-----"
_HASHES = {"sha512": hashlib.sha512, "sha256": hashlib.sha256}  # the two PROTOCOL.sshsig allows
_WRAP = 70  # ssh-keygen's base64 line width (sshbuf_dtob64 with wrap)


class SigError(ValueError):
    """A signature (or public key line) is malformed or does not verify; str() is the reason."""


class _Reader:
    """Reads SSH wire-format fields; running off the end raises ``SigError("truncated")``."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, n: int) -> bytes:
        if n > len(self._data) - self._pos:
            raise SigError("truncated")
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def u32(self) -> int:
        value: int = struct.unpack(">I", self.take(4))[0]
        return value

    def string(self) -> bytes:
        return self.take(self.u32())

    @property
    def at_end(self) -> bool:
        return self._pos == len(self._data)


def _string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _show(raw: bytes, limit: int = 40) -> str:
    """A short, printable rendering of an untrusted field for error messages."""
    text = raw.decode("utf-8", "replace")
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _key_blob(key: Ed25519PublicKey) -> bytes:
    return _string(KEY_TYPE.encode()) + _string(key.public_bytes(Encoding.Raw, PublicFormat.Raw))


def _parse_key_blob(blob: bytes) -> bytes:
    """The 32 raw key bytes of an ``ssh-ed25519`` wire blob."""
    r = _Reader(blob)
    try:
        key_type = r.string()
    except SigError:
        raise SigError("malformed public key") from None
    if key_type != KEY_TYPE.encode():
        raise SigError(f"unsupported key type {_show(key_type)}")
    try:
        raw = r.string()
    except SigError:
        raise SigError("malformed public key") from None
    if len(raw) != 32 or not r.at_end:
        raise SigError("malformed public key")
    return raw


def _signed_data(namespace: bytes, reserved: bytes, hash_alg: str, message: bytes) -> bytes:
    digest = _HASHES[hash_alg](message).digest()
    return MAGIC + _string(namespace) + _string(reserved) + _string(hash_alg.encode()) + _string(digest)


def public_key_line(key: Ed25519PublicKey) -> str:
    """The OpenSSH one-line form ``ssh-ed25519 AAAA...`` (no comment)."""
    return f"{KEY_TYPE} {base64.b64encode(_key_blob(key)).decode()}"


def load_public_key_line(line: str) -> Ed25519PublicKey:
    """Parse ``ssh-ed25519 AAAA... [comment]``; raises :class:`SigError` for anything else."""
    parts = line.split(None, 2)
    if len(parts) < 2:
        raise SigError("not an OpenSSH public key line")
    if parts[0] != KEY_TYPE:
        raise SigError(f"unsupported key type {parts[0][:40]!r}")
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise SigError("bad base64 in public key") from None
    return Ed25519PublicKey.from_public_bytes(_parse_key_blob(blob))


def sign(private_key: Ed25519PrivateKey, message: bytes, namespace: str = NAMESPACE) -> bytes:
    """The binary SSHSIG blob signing ``message`` (SHA-512, as ``ssh-keygen -Y sign`` does)."""
    if not namespace:
        raise ValueError("the SSHSIG namespace must not be empty")  # PROTOCOL.sshsig: MUST NOT
    ns = namespace.encode()
    signature = private_key.sign(_signed_data(ns, b"", "sha512", message))
    return (
        MAGIC
        + struct.pack(">I", VERSION)
        + _string(_key_blob(private_key.public_key()))
        + _string(ns)
        + _string(b"")
        + _string(b"sha512")
        + _string(_string(KEY_TYPE.encode()) + _string(signature))
    )


def armor(blob: bytes) -> str:
    """The ASCII-armoured form, byte-for-byte what ``ssh-keygen -Y sign`` writes."""
    b64 = base64.b64encode(blob).decode()
    lines = [b64[i : i + _WRAP] for i in range(0, len(b64), _WRAP)]
    return BEGIN + "\n" + "\n".join(lines) + "\n" + END + "\n"


def dearmor(text: str) -> bytes:
    """The binary blob inside an armoured signature; raises :class:`SigError` if malformed.

    Like ssh-keygen, whitespace around the armour and anything after the END line is ignored.
    """
    text = text.lstrip()
    if not text.startswith(BEGIN):
        raise SigError("not an armored SSH signature")
    end = text.find(END, len(BEGIN))
    if end < 0:
        raise SigError("armored SSH signature has no END line")
    body = "".join(text[len(BEGIN) : end].split())
    try:
        blob = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):  # ValueError: non-ASCII characters
        raise SigError("bad base64 in armored SSH signature") from None
    if not blob:
        raise SigError("empty armored SSH signature")
    return blob


def verify(blob: bytes, message: bytes, namespace: str = NAMESPACE) -> str:
    """Check an SSHSIG blob over ``message``; return the signer's ``ssh-ed25519 AAAA...`` line.

    Raises :class:`SigError` with a short reason on any problem, and nothing else, whatever
    the bytes. The caller must still decide whether that key is one it trusts.
    """
    if not blob.startswith(MAGIC):
        raise SigError("not an SSH signature")
    r = _Reader(blob)
    r.take(len(MAGIC))
    version = r.u32()
    if version != VERSION:
        raise SigError(f"unsupported SSH signature version {version}")
    key_blob, ns, reserved, hash_alg, sig_blob = (r.string() for _ in range(5))
    if not r.at_end:
        raise SigError("trailing data after signature")
    raw_key = _parse_key_blob(key_blob)
    if ns != namespace.encode():
        raise SigError(f"wrong namespace {_show(ns)}")
    alg = hash_alg.decode("ascii", "replace")
    if alg not in _HASHES:
        raise SigError(f"unsupported hash algorithm {_show(hash_alg)}")
    s = _Reader(sig_blob)
    try:
        sig_type, sig = s.string(), s.string()
    except SigError:
        raise SigError("malformed signature") from None
    if sig_type != KEY_TYPE.encode():
        raise SigError(f"signature type {_show(sig_type)} does not match key type")
    if len(sig) != 64 or not s.at_end:
        raise SigError("malformed signature")
    try:
        key = Ed25519PublicKey.from_public_bytes(raw_key)
        # The reserved field is signed as found: PROTOCOL.sshsig says to ignore its contents.
        key.verify(sig, _signed_data(ns, reserved, alg, message))
    except (InvalidSignature, ValueError):
        raise SigError("bad signature") from None
    return public_key_line(key)
