"""The one trust policy: which signers' receipts count, and where that list came from.

Every command (show, verify, report, export, budget, carry, the hooks) loads trust
through :func:`load_trust` and describes it with :meth:`Trust.describe`, so that a
receipt means the same thing everywhere (docs/security.md).

Sources, first found wins: ``--allowed-signers FILE``; the file ``.aispend.toml``
names in ``[trust] allowed_signers`` (a path inside the worktree, nothing else);
``.aispend/allowed_signers``; git's ``gpg.ssh.allowedSignersFile`` (the user's own
configuration). Without any of them no signer is trusted: signatures are still
checked, but no receipt counts.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from aispend import git
from aispend.errors import AispendError
from aispend.receipts import keys

#: Where ``aispend install`` puts the team's list (committed with the code).
DEFAULT_FILE = ".aispend/allowed_signers"


@dataclass
class Trust:
    """The allowed signers, and where they came from (``signers`` None: no list anywhere)."""

    signers: list[keys.AllowedSigner] | None
    source: str | None
    problems: list[str] = field(default_factory=list)
    fingerprint: str = "none"  # sha256 of the list's text: cached verifications are per list

    @property
    def checked(self) -> bool:
        """Whether signers are checked at all (a list exists)."""
        return self.signers is not None

    def describe(self) -> dict[str, object]:
        """What every output says about the trust it applied."""
        return {
            "allowed_signers": self.source,
            "signers_checked": self.checked,
            "signers": len(self.signers) if self.signers is not None else 0,
            "problems": list(self.problems),
        }

    def sentence(self) -> str:
        """One line for people: which trust was applied."""
        if self.signers is None:
            return (
                "no allowed-signers list: signers were not checked and no receipt counts "
                f"(commit one at {DEFAULT_FILE}: aispend install)"
            )
        return f"trusted signers: {len(self.signers)} from {self.source}"


def _inside(worktree: Path, value: str, what: str) -> Path:
    """``value`` as a path inside ``worktree`` (symlinks resolved); an error naming no content otherwise."""
    if os.path.isabs(value) or value.startswith("~"):
        raise AispendError(f"{what} must be a path inside the repository, not {value!r}")
    root = worktree.resolve()
    path = (root / value).resolve()
    if path != root and root not in path.parents:
        raise AispendError(f"{what} must be a path inside the repository: {value!r} leaves it")
    return path


def load_trust(repo: git.Repo, explicit: Path | None = None) -> Trust:
    """The trust every command applies in ``repo`` (see the module docstring)."""
    candidates: list[Path] = []
    if explicit is not None:
        if not explicit.is_file():
            raise AispendError(f"--allowed-signers {explicit}: no such file")
        candidates.append(explicit)
    else:
        named = _policy_signers(repo)
        if named is not None:
            path = _inside(repo.worktree, named, ".aispend.toml: [trust] allowed_signers")
            if not path.is_file():
                raise AispendError(f".aispend.toml: [trust] allowed_signers names {named!r}, which is not a file in the repository")
            candidates.append(path)
        candidates.append(repo.worktree / DEFAULT_FILE)
        configured = git.config(repo, "gpg.ssh.allowedSignersFile")
        if configured:
            p = Path(os.path.expanduser(configured))
            candidates.append(p if p.is_absolute() else repo.worktree / p)
    for path in candidates:
        if path.is_file():
            try:
                raw = path.read_bytes()
            except OSError as e:
                raise AispendError(f"cannot read {path}: {e.strerror}") from None
            text = raw.decode("utf-8", errors="replace")
            signers, bad = keys.parse_allowed_signers(text)
            # Problems name the line and the reason, never the line's content.
            return Trust(signers, _shown(repo, path), [f"{_shown(repo, path)}:{n}: {why}" for n, why in bad], hashlib.sha256(raw).hexdigest())
    return Trust(None, None)


def _shown(repo: git.Repo, path: Path) -> str:
    """A trust file's name for output: relative to the worktree when inside it."""
    try:
        return str(path.resolve().relative_to(repo.worktree.resolve()))
    except ValueError:
        return str(path)


def _policy_signers(repo: git.Repo) -> str | None:
    """The allowed-signers path ``.aispend.toml`` names, if any (read here, without the rest
    of the policy, which ``aispend budget`` validates)."""
    import tomllib

    try:
        text = (repo.worktree / ".aispend.toml").read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise AispendError(f".aispend.toml: cannot read it ({type(e).__name__}): trust cannot be decided") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        # Broken, it may name another list: never fall back to a different trust without a word.
        raise AispendError(f".aispend.toml: {e}: trust cannot be decided") from None
    trust = data.get("trust")
    value = trust.get("allowed_signers") if isinstance(trust, dict) else None
    return value if isinstance(value, str) and value else None
