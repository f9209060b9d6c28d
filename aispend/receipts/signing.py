"""This machine's signing key, and signing a receipt with it.

The key lives in the data dir (``keys/aispend_ed25519``, OpenSSH format, mode
0600) unless ``aispend install --key PATH`` named an existing unencrypted
ed25519 SSH key, whose path is then remembered in ``keys/key-path``.

Only the data dir's own key is ever created by aispend. A named key that goes
missing or becomes unusable is an error (:class:`keys.KeyFileError`, which the
hooks' queue waits out), never a reason to make a new key at its path.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from aispend.paths import data_dir, data_subdir
from aispend.receipts import keys, sshsig
from aispend.receipts.model import canonical, signed_part

#: What to do about a named key that is gone or unusable.
NAMED_KEY_FIX = "restore it, or run aispend install --key NEW or aispend install to go back to aispend's own key"


def default_key_path() -> Path:
    return data_dir() / "keys" / "aispend_ed25519"


def _pointer() -> Path:
    return data_dir() / "keys" / "key-path"


def named_key_path() -> Path | None:
    """The key ``aispend install --key`` named, if one was."""
    try:
        named = _pointer().read_text(encoding="utf-8").strip()
    except OSError:
        named = ""
    return Path(named) if named else None


def key_path() -> Path:
    """The key receipts are signed with: the one named at install, else the data dir's."""
    return named_key_path() or default_key_path()


def use_key(path: Path) -> keys.SigningKey:
    """Sign with an existing key from now on (checked first: unencrypted ed25519, private)."""
    key = keys.load_signing_key(path)
    ptr = data_subdir("keys") / _pointer().name
    tmp = ptr.with_name(ptr.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(str(path.resolve()) + "\n")
    tmp.replace(ptr)
    return key


def use_default_key() -> None:
    """Forget the key named at install: sign with the data dir's own key again."""
    _pointer().unlink(missing_ok=True)


def named_key_problem(path: Path, e: keys.KeyFileError) -> str:
    """One line: why the named key ``path`` cannot sign, and the fix."""
    if not os.path.lexists(path):
        return f"{e}: {NAMED_KEY_FIX}"
    if keys.permissions_problem(path):
        return str(e)  # it says 'run chmod 600 ...'
    return f"{e}: run aispend install --key NEW (an unencrypted ed25519 key) or aispend install to go back to aispend's own key"


def ensure_key(comment: str) -> tuple[keys.SigningKey, bool]:
    """The signing key, and whether it was just created: the data dir's own key is created when
    missing; a key named at install is only ever loaded (KeyFileError, with the fix, when it
    cannot be)."""
    named = named_key_path()
    if named is not None:
        try:
            return keys.load_signing_key(named), False
        except keys.KeyFileError as e:
            raise keys.KeyFileError(named_key_problem(named, e)) from None
    path = default_key_path()
    if path.exists():
        return keys.load_signing_key(path), False
    data_subdir("keys")  # the data dir and keys/ 0700, before create_key makes them with the umask's
    return keys.create_key(path, comment), True


def sign(receipt: dict[str, Any], key: keys.SigningKey, principal: str) -> str:
    """Set ``signer`` and ``sig`` on ``receipt``; return its canonical line."""
    receipt.pop("sig", None)
    receipt["signer"] = {"principal": principal, "key": key.public_line}
    blob = sshsig.sign(key.private, signed_part(receipt))
    receipt["sig"] = base64.b64encode(blob).decode("ascii")
    return canonical(receipt)
