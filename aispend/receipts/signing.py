"""This machine's signing key, and signing a receipt with it.

The key lives in the data dir (``keys/aispend_ed25519``, OpenSSH format, mode
0600) unless ``aispend install --key PATH`` named an existing unencrypted
ed25519 SSH key, whose path is then remembered in ``keys/key-path``.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from aispend.paths import data_dir
from aispend.receipts import keys, sshsig
from aispend.receipts.model import canonical, signed_part


def default_key_path() -> Path:
    return data_dir() / "keys" / "aispend_ed25519"


def _pointer() -> Path:
    return data_dir() / "keys" / "key-path"


def key_path() -> Path:
    """The key receipts are signed with: the one named at install, else the data dir's."""
    try:
        named = _pointer().read_text(encoding="utf-8").strip()
    except OSError:
        named = ""
    return Path(named) if named else default_key_path()


def use_key(path: Path) -> keys.SigningKey:
    """Sign with an existing key from now on (checked first: unencrypted ed25519, private)."""
    key = keys.load_signing_key(path)
    ptr = _pointer()
    ptr.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = ptr.with_name(ptr.name + ".tmp")
    tmp.write_text(str(path.resolve()) + "\n", encoding="utf-8")
    tmp.replace(ptr)
    return key


def ensure_key(comment: str) -> tuple[keys.SigningKey, bool]:
    """The signing key, created when there is none; and whether it was just created."""
    path = key_path()
    if path.exists():
        return keys.load_signing_key(path), False
    return keys.create_key(path, comment), True


def sign(receipt: dict[str, Any], key: keys.SigningKey, principal: str) -> str:
    """Set ``signer`` and ``sig`` on ``receipt``; return its canonical line."""
    receipt.pop("sig", None)
    receipt["signer"] = {"principal": principal, "key": key.public_line}
    blob = sshsig.sign(key.private, signed_part(receipt))
    receipt["sig"] = base64.b64encode(blob).decode("ascii")
    return canonical(receipt)
