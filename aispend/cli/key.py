"""``aispend key``: this machine's receipt-signing key and its allowed-signers line."""

from __future__ import annotations

from typing import Optional

import typer


def key(
    principal: Optional[str] = typer.Option(None, "--principal", metavar="EMAIL", help="The identity for the allowed-signers line (default: git's user.email)."),
    line: bool = typer.Option(False, "--line", help="Print only the allowed-signers line: aispend key --line >> .aispend/allowed_signers"),
) -> None:
    """Show the public key receipts are signed with, and the line that makes teammates trust it."""
    from aispend import git
    from aispend.errors import AispendError
    from aispend.receipts import keys, signing

    path = signing.key_path()
    named = signing.named_key_path()
    try:
        k = keys.load_key(path)
    except keys.KeyFileError as e:
        if named is not None:
            raise AispendError(signing.named_key_problem(named, e)) from None
        if not path.exists():
            raise AispendError(f"no signing key yet ({path}): 'aispend install' creates one") from None
        raise
    who = principal or git.config(None, "user.email")
    if not who:
        raise AispendError("no principal: pass --principal EMAIL or set git's user.email")
    try:
        signer_line = keys.allowed_signers_line(who, k.public_line)
    except ValueError:
        raise AispendError(f"principal {who!r} cannot go in an allowed-signers file") from None
    if line:
        typer.echo(signer_line)  # nothing else: for 'aispend key --line >> .aispend/allowed_signers'
        return
    typer.echo(f"key: {k.path}")
    problem = keys.permissions_problem(k.path)
    if problem:
        typer.echo(f"warning: {problem}; run: chmod 600 {k.path}")
    typer.echo(f"public key: {k.public_line}")
    typer.echo("allowed signers line (add it to .aispend/allowed_signers):")
    typer.echo(signer_line)
