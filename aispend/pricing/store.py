"""Updating the price table offline: ``aispend pricing update --from FILE``.

The new table never forgets a model: entries of the bundled snapshot that the
new file lacks are kept, each entry recording where its price came from.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from aispend.errors import AispendError
from aispend.pricing import table as pricing_table


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise AispendError(f"cannot read {path}: {e.strerror}") from None
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise AispendError(f"{path} is not JSON ({e})") from None
    if not isinstance(data, dict):
        raise AispendError(f"{path} is not a price table (expected a JSON object)")
    return data


def build_from(path: Path) -> dict[str, Any]:
    """A snapshot from a LiteLLM table or an aispend snapshot, merged over the bundled one."""
    from aispend.pricing import litellm

    data = _read(path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    if isinstance(data.get("models"), dict) and "format" in data:
        new = data
    else:
        label = f"file:{path.name}@sha256:{sha[:12]}"
        new = litellm.convert([(label, data)])
        if not new.get("models"):
            raise AispendError(f"{path} holds no Anthropic, OpenAI or Google coding model prices")
    bundled = pricing_table.bundled().snapshot
    models = dict(bundled["models"])
    models.update(new["models"])
    body = json.dumps(models, sort_keys=True, separators=(",", ":")).encode()
    return {
        "format": 1,
        "id": f"custom-{hashlib.sha256(body).hexdigest()[:12]}",
        "generated_from": [{"file": path.name, "sha256": sha}] + list(bundled.get("generated_from", [])),
        "models": models,
    }


def save(snapshot: dict[str, Any]) -> Path:
    """Write the stored table atomically (temp file, then rename)."""
    dest = pricing_table.stored_path()
    try:
        from aispend.paths import private_dir

        private_dir(dest.parent)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".pricing-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(snapshot, fh, indent=1, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, dest)
    except OSError as e:
        raise AispendError(f"cannot write {dest}: {e.strerror}") from None
    return dest


def reset() -> bool:
    try:
        pricing_table.stored_path().unlink()
        return True
    except FileNotFoundError:
        return False
