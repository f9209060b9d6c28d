"""Ed25519 signing keys on disk, and OpenSSH ``allowed_signers`` files.

Private keys are plain unencrypted OpenSSH key files, interchangeable with
``ssh-keygen``: a key made here can sign with ``ssh-keygen -Y sign`` and a key
made by ``ssh-keygen -t ed25519 -N ''`` can sign here. Allowed-signers parsing
follows ssh-keygen(1) ALLOWED SIGNERS closely enough that a file both accept
means the same thing to both (except ``valid-after``/``valid-before``, which
are accepted and ignored, and ``cert-authority`` lines, which are skipped).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aispend.errors import AispendError
from aispend.receipts.sshsig import NAMESPACE, SigError, _Reader, public_key_line

_OPENSSH_BEGIN = b"-----BEGIN OPENSSH PRIVATE KEY-----"
_OPENSSH_END = b"-----END OPENSSH PRIVATE KEY-----"
_OPENSSH_AUTH_MAGIC = b"openssh-key-v1\0"
# How to name other key types in "is an RSA key"-style messages.
_KEY_KINDS = {
    "ssh-rsa": "an RSA", "ssh-dss": "a DSA", "ecdsa-sha2-nistp256": "an ECDSA",
    "ecdsa-sha2-nistp384": "an ECDSA", "ecdsa-sha2-nistp521": "an ECDSA",
    "sk-ssh-ed25519@openssh.com": "a security-key (FIDO)",
    "sk-ecdsa-sha2-nistp256@openssh.com": "a security-key (FIDO)",
}
_PEM_KINDS = {b"RSA": "an RSA", b"DSA": "a DSA", b"EC": "an ECDSA"}


class KeyFileError(AispendError):
    """A key file is missing, unreadable, encrypted, of the wrong type or not a key."""


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key, its ``ssh-ed25519 AAAA...`` line (no comment) and its file."""

    private: Ed25519PrivateKey
    public_line: str
    path: Path


@dataclass(frozen=True)
class AllowedSigner:
    """One usable ``allowed_signers`` line. ``namespaces`` None means any namespace."""

    principals: tuple[str, ...]
    namespaces: tuple[str, ...] | None
    public_line: str


# --------------------------------------------------------------------- key files


def _write_new_file(path: Path, data: bytes, mode: int) -> None:
    """Write ``path`` atomically: a 0600 temp file in the same dir, fsync, rename.

    The temp file is created 0600 (never readable by others, even for a moment) and
    only then given its final ``mode``.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)  # exact mode, whatever the umask
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fsync_dir(directory: Path) -> None:
    """Make the renames durable; best effort (not every platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def create_key(path: Path, comment: str) -> SigningKey:
    """Generate an Ed25519 key: ``path`` (OpenSSH private key, 0600) and ``path.pub`` (0644).

    The parent directory is created 0700 if missing. Refuses to overwrite either file.
    """
    if "\n" in comment or "\r" in comment:
        raise KeyFileError("a key comment cannot contain a line break")
    pub_path = path.with_name(path.name + ".pub")
    for p in (path, pub_path):
        if os.path.lexists(p):
            raise KeyFileError(f"{p} already exists; not overwriting it")
    parent = path.parent
    if not parent.exists():
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(parent, 0o700)  # mkdir's mode is filtered through the umask
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    line = public_key_line(key.public_key())
    _write_new_file(path, pem, 0o600)
    _write_new_file(pub_path, f"{line} {comment}".rstrip().encode() + b"\n", 0o644)
    _fsync_dir(parent)
    return SigningKey(private=key, public_line=line, path=path)


def _openssh_header(data: bytes) -> tuple[str, str] | None:
    """(cipher name, key type) from an OpenSSH private key's cleartext header, or None."""
    start = data.find(_OPENSSH_BEGIN)
    end = data.find(_OPENSSH_END, start)
    if start < 0 or end < 0:
        return None
    try:
        raw = base64.b64decode(b"".join(data[start + len(_OPENSSH_BEGIN) : end].split()), validate=True)
        if not raw.startswith(_OPENSSH_AUTH_MAGIC):
            return None
        r = _Reader(raw[len(_OPENSSH_AUTH_MAGIC) :])
        cipher = r.string()
        r.string()  # kdf name
        r.string()  # kdf options
        r.u32()  # number of keys
        key_type = _Reader(r.string()).string()
    except (SigError, binascii.Error, ValueError):
        return None
    return cipher.decode("ascii", "replace"), key_type.decode("ascii", "replace")


def _kind_of(key: object) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return "an RSA"
    if isinstance(key, dsa.DSAPrivateKey):
        return "a DSA"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "an ECDSA"
    return f"a {type(key).__name__.removeprefix('_')}"


def load_key(path: Path) -> SigningKey:
    """Load an unencrypted Ed25519 private key (OpenSSH or PEM PKCS#8 format).

    Raises :class:`KeyFileError` with a message that says what is wrong with the file.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"signing key {path} does not exist") from None
    except IsADirectoryError:
        raise KeyFileError(f"signing key {path} is a directory, not a key file") from None
    except OSError as e:
        raise KeyFileError(f"cannot read signing key {path}: {e.strerror or e}") from None
    encrypted = f"signing key {path} is encrypted; aispend needs an unencrypted key"
    wrong_type = "signing key {path} is {kind} key; aispend signs with ed25519 keys"
    garbage = f"{path} is not a private key (expected an OpenSSH or PEM ed25519 key)"

    header = _openssh_header(data)
    if header is not None:
        cipher, key_type = header
        if key_type != "ssh-ed25519":  # the type is in the clear even when encrypted
            kind = _KEY_KINDS.get(key_type, f"a {key_type!r}")
            raise KeyFileError(wrong_type.format(path=path, kind=kind))
        if cipher != "none":
            raise KeyFileError(encrypted)
    elif m := re.search(rb"-----BEGIN (RSA|DSA|EC) PRIVATE KEY-----", data):
        raise KeyFileError(wrong_type.format(path=path, kind=_PEM_KINDS[m.group(1)]))
    elif b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in data:
        raise KeyFileError(encrypted)
    elif data.lstrip().startswith((b"ssh-", b"ecdsa-", b"sk-")):
        raise KeyFileError(f"{path} is a public key; aispend needs the private key file")

    loaded: object
    try:
        if header is not None:
            loaded = serialization.load_ssh_private_key(data, password=None)
        else:
            loaded = serialization.load_pem_private_key(data, password=None)
    except TypeError:  # cryptography's "private key is encrypted"
        raise KeyFileError(encrypted) from None
    except (ValueError, UnsupportedAlgorithm):
        raise KeyFileError(garbage) from None
    if not isinstance(loaded, Ed25519PrivateKey):
        raise KeyFileError(wrong_type.format(path=path, kind=_kind_of(loaded)))
    return SigningKey(private=loaded, public_line=public_key_line(loaded.public_key()), path=path)


def permissions_problem(path: Path) -> str | None:
    """Why a private key file's permissions are too open (like ssh's check), or None.

    Returns e.g. ``"mode 0644: readable by group and others"``. None when the mode is
    fine, the file cannot be examined, or on Windows (no POSIX modes).
    """
    if os.name == "nt":
        return None
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    if not mode & 0o077:
        return None
    who = " and ".join(w for w, bits in (("group", 0o070), ("others", 0o007)) if mode & bits)
    access = "readable" if mode & 0o044 else "writable" if mode & 0o022 else "accessible"
    return f"mode {mode:04o}: {access} by {who}"


def load_signing_key(path: Path) -> SigningKey:
    """A key to sign with: as :func:`load_key`, but refused when others can read it (as ssh
    refuses), with the command that fixes it."""
    problem = permissions_problem(path)
    if problem:
        raise KeyFileError(f"signing key {path} has {problem}; aispend will not sign with it: run chmod 600 {path}")
    return load_key(path)


# ---------------------------------------------------------------- allowed signers


def allowed_signers_line(principal: str, public_line: str) -> str:
    """An ``allowed_signers`` line trusting ``public_line`` for ``principal`` in our namespace."""
    if not principal or '"' in principal or any(c in principal for c in "\r\n"):
        raise ValueError(f"cannot write principal {principal!r} to an allowed_signers file")
    if any(c.isspace() for c in principal):
        principal = f'"{principal}"'  # ssh-keygen reads a quoted principals field
    key_type, b64 = public_line.split()[:2]
    return f'{principal} namespaces="{NAMESPACE}" {key_type} {b64}'


def _pattern_match(text: str, pattern: str) -> bool:
    """ssh's match_pattern(): only ``*`` and ``?`` are special (no ``[...]`` classes)."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, re.DOTALL) is not None


def _match_list(text: str, patterns: tuple[str, ...]) -> bool:
    """ssh's match_pattern_list() == 1: some pattern matches and no ``!pattern`` does."""
    positive = False
    for p in patterns:
        if p.startswith("!"):
            if _pattern_match(text, p[1:]):
                return False
        elif _pattern_match(text, p):
            positive = True
    return positive


def _is_key_type(token: str) -> bool:
    """Whether the field after the principals is a key type (else it is the options field)."""
    return token.startswith(("ssh-", "ecdsa-", "sk-"))


def _next_field(rest: str) -> tuple[str, str]:
    """Split off one whitespace-separated field in which double quotes protect spaces.

    Raises ValueError on an unterminated quote.
    """
    i, quoted = 0, False
    while i < len(rest) and (quoted or not rest[i].isspace()):
        if rest[i] == '"':
            quoted = not quoted
        i += 1
    if quoted:
        raise ValueError("unterminated quote")
    return rest[:i], rest[i:].lstrip()


def _split_options(field: str) -> list[str]:
    """Split ``a,b="x,y",c`` on the commas that are outside quotes."""
    out, cur, quoted = [], "", False
    for c in field:
        if c == '"':
            quoted = not quoted
        if c == "," and not quoted:
            out.append(cur)
            cur = ""
        else:
            cur += c
    out.append(cur)
    return out


def _parse_signer_line(line: str) -> AllowedSigner | None:
    """One non-comment line; None for a ``cert-authority`` line; ValueError(reason) if malformed."""
    first, rest = _next_field(line)
    if first.startswith('"'):
        if not first.endswith('"') or len(first) < 2:
            raise ValueError("bad quoting in principals")
        first = first[1:-1]
    principals = tuple(first.split(","))
    if not rest:
        raise ValueError("missing key")
    if any(not p for p in principals):
        raise ValueError("empty principal")
    namespaces: tuple[str, ...] | None = None
    cert_authority = False
    field, rest = _next_field(rest)
    if not _is_key_type(field):
        for opt in _split_options(field):
            name, eq, value = opt.partition("=")
            name = name.lower()  # ssh matches option names case-insensitively
            if name == "cert-authority" and not eq:
                cert_authority = True
                continue
            if name not in ("namespaces", "valid-after", "valid-before") or not eq:
                raise ValueError(f"unknown option {opt[:40]!r}")
            if len(value) < 2 or value[0] != '"' or value[-1] != '"' or '"' in value[1:-1]:
                raise ValueError(f"option {name} needs a quoted value")
            if name == "namespaces":
                if namespaces is not None:
                    raise ValueError('multiple "namespaces" options')
                namespaces = tuple(value[1:-1].split(","))
            # valid-after / valid-before: accepted and ignored (see the module docstring).
        if not rest:
            raise ValueError("missing key")
        field, rest = _next_field(rest)
    parts = rest.split(None, 1)
    if not parts:
        raise ValueError("missing key data")
    try:
        blob = base64.b64decode(parts[0], validate=True)
        inner_type = _Reader(blob).string()
    except (binascii.Error, ValueError):  # SigError is a ValueError
        raise ValueError("invalid key") from None
    if inner_type != field.encode():
        raise ValueError("invalid key")
    if cert_authority:
        return None  # aispend does not do SSH certificates
    return AllowedSigner(principals, namespaces, f"{field} {parts[0]}")


def parse_allowed_signers(text: str) -> tuple[list[AllowedSigner], list[tuple[int, str]]]:
    """Parse an ``allowed_signers`` file (ssh-keygen(1) ALLOWED SIGNERS).

    Returns the usable signers and, for each malformed line, ``(line_number, reason)``
    (1-based). Comments, blank lines and ``cert-authority`` lines are skipped silently.
    """
    signers: list[AllowedSigner] = []
    problems: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            signer = _parse_signer_line(line)
        except ValueError as e:
            problems.append((number, str(e)))
            continue
        if signer is not None:
            signers.append(signer)
    return signers, problems


def signer_allowed(
    signers: list[AllowedSigner], principal: str, public_line: str, namespace: str = NAMESPACE
) -> bool:
    """Whether some signer line trusts ``public_line`` for ``principal`` in ``namespace``.

    Principals and namespaces match as ssh's pattern lists (``*``, ``?``, and a matching
    ``!pattern`` vetoes the line); keys compare by type and base64, ignoring comments.
    """
    key = tuple(public_line.split()[:2])
    return any(
        tuple(s.public_line.split()[:2]) == key
        and _match_list(principal, s.principals)
        and (s.namespaces is None or _match_list(namespace, s.namespaces))
        for s in signers
    )
