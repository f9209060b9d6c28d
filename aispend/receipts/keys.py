"""Ed25519 signing keys on disk, and OpenSSH ``allowed_signers`` files.

Private keys are plain unencrypted OpenSSH key files, interchangeable with
``ssh-keygen``: a key made here can sign with ``ssh-keygen -Y sign`` and a key
made by ``ssh-keygen -t ed25519 -N ''`` can sign here. Allowed-signers parsing
follows ssh-keygen(1) ALLOWED SIGNERS closely enough that a file both accept
means the same thing to both, including the ``valid-after``/``valid-before``
validity window (checked at a given moment, as ``ssh-keygen -Y verify
-Overify-time=...`` does); only ``cert-authority`` lines are skipped.

Parse problems are reported as fixed phrases, never with text from the file: the
file may be chosen by whoever controls the repository.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
import stat
import time
from dataclasses import dataclass
from datetime import date
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
    """One usable ``allowed_signers`` line. ``namespaces`` None means any namespace.

    ``valid_after``/``valid_before`` are the line's validity window in seconds since the
    epoch, both ends inclusive (None: no limit on that side).
    """

    principals: tuple[str, ...]
    namespaces: tuple[str, ...] | None
    public_line: str
    valid_after: int | None = None
    valid_before: int | None = None


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


# White space as C's isspace() sees it: what glibc strptime() skips before a number.
_C_SPACE = " \t\n\v\f\r"
# YYYYMMDDHHMMSS fields: (start, end, lowest, highest), the ranges glibc strptime() takes
# for %Y %m %d %H %M %S (seconds up to 61, for leap seconds).
_TIME_FIELDS = ((0, 4, 0, 9999), (4, 6, 1, 12), (6, 8, 1, 31), (8, 10, 0, 23), (10, 12, 0, 59), (12, 14, 0, 61))
_EPOCH_ORDINAL = 719163  # date(1970, 1, 1).toordinal()


def _parse_absolute_time(value: str) -> int | None:
    """Seconds since the epoch as OpenSSH's parse_absolute_time() (misc.c, glibc) reads
    ``value``, or None where it fails (which makes ssh-keygen reject the whole line).

    ``YYYYMMDD``, ``YYYYMMDDHHMM`` or ``YYYYMMDDHHMMSS``, optionally followed by ``Z`` or
    ``UTC`` (any case) for UTC; otherwise local time (TZ) by mktime() with tm_isdst 0, so
    during summer time the zone's *standard* offset applies, as in ssh-keygen. Each field
    is a strptime() number: leading white space skipped, then only digits (so ``2024 1 1``
    passes). Overflows are normalised as timegm()/mktime() do (``20240231`` is 2 March).
    A time at or before the epoch fails (ssh treats 0 as "no limit", so rejects it).
    """
    if not value.isascii():  # C compares bytes: any non-ASCII byte is neither digit nor space
        return None
    n, utc = len(value), False
    if n > 1 and value[-1] in "zZ":
        n, utc = n - 1, True
    elif n > 3 and value[n - 3 :].upper() == "UTC":
        n, utc = n - 3, True
    if n not in (8, 12, 14):
        return None
    fields = [0, 1, 1, 0, 0, 0]
    for i, (start, end, lowest, highest) in enumerate(_TIME_FIELDS):
        if end > n:
            break  # absent fields stay 0 (ssh memsets the struct tm)
        digits = value[start:end].lstrip(_C_SPACE)
        if not digits or any(c not in "0123456789" for c in digits) or not lowest <= int(digits) <= highest:
            return None
        fields[i] = int(digits)
    year, month, day, hour, minute, second = fields
    if utc:
        if year < 1:  # date() cannot hold year 0, which is long before the epoch anyway
            return None
        days = date(year, month, 1).toordinal() - _EPOCH_ORDINAL + day - 1
        when = ((days * 24 + hour) * 60 + minute) * 60 + second
    else:
        try:
            when = int(time.mktime((year, month, day, hour, minute, second, 0, 1, 0)))
        except (OverflowError, ValueError):
            return None
    return when if when > 0 else None


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
    window: dict[str, int] = {}  # "valid-after"/"valid-before" -> seconds since the epoch
    cert_authority = False
    field, rest = _next_field(rest)
    if not _is_key_type(field):
        # Every reason below is a fixed phrase: the file's text never reaches a message.
        for opt in _split_options(field):
            name, eq, value = opt.partition("=")
            name = name.lower()  # ssh matches option names case-insensitively
            if name == "cert-authority" and not eq:
                cert_authority = True
                continue
            quoted = len(value) >= 2 and value[0] == '"' and value[-1] == '"' and '"' not in value[1:-1]
            if name == "namespaces" and eq:
                if not quoted:
                    raise ValueError("option namespaces needs a quoted value")
                if namespaces is not None:
                    raise ValueError('multiple "namespaces" options')
                namespaces = tuple(value[1:-1].split(","))
            elif name in ("valid-after", "valid-before") and eq:
                option = "valid-after" if name == "valid-after" else "valid-before"  # not the file's text
                if not quoted:
                    raise ValueError(f"option {option} needs a quoted time")
                if option in window:
                    raise ValueError(f'multiple "{option}" options')
                when = _parse_absolute_time(value[1:-1])
                if when is None:
                    raise ValueError(f"invalid {option} time")
                window[option] = when
            else:
                raise ValueError("unknown option")
        # ssh rejects an empty window, including valid-before == valid-after.
        if "valid-after" in window and "valid-before" in window and window["valid-before"] <= window["valid-after"]:
            raise ValueError("valid-before is not after valid-after")
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
    return AllowedSigner(
        principals, namespaces, f"{field} {parts[0]}", window.get("valid-after"), window.get("valid-before")
    )


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
    signers: list[AllowedSigner],
    principal: str,
    public_line: str,
    namespace: str = NAMESPACE,
    when_s: int | None = None,
) -> bool:
    """Whether some signer line trusts ``public_line`` for ``principal`` in ``namespace``
    at ``when_s`` (seconds since the epoch; None: now, as ssh-keygen without verify-time).

    Principals and namespaces match as ssh's pattern lists (``*``, ``?``, and a matching
    ``!pattern`` vetoes the line); keys compare by type and base64, ignoring comments. A
    line counts only inside its validity window, both ends inclusive, as ``ssh-keygen -Y
    verify -Overify-time=...`` decides.
    """
    at = int(time.time()) if when_s is None else when_s
    key = tuple(public_line.split()[:2])
    return any(
        tuple(s.public_line.split()[:2]) == key
        and _match_list(principal, s.principals)
        and (s.namespaces is None or _match_list(namespace, s.namespaces))
        and (s.valid_after is None or at >= s.valid_after)
        and (s.valid_before is None or at <= s.valid_before)
        for s in signers
    )
