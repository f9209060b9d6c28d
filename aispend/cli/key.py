"""``aispend key``: this machine's receipt-signing key and its allowed-signers line."""

from __future__ import annotations

from typing import Optional

import typer


def key(
    principal: Optional[str] = typer.Option(None, "--principal", metavar="EMAIL", help="The identity for the allowed-signers line (default: git's user.email)."),
) -> None:
    """Show the public key receipts are signed with, and the line that makes teammates trust it."""
    from aispend import git
    from aispend.errors import AispendError
    from aispend.receipts import keys, signing

    path = signing.key_path()
    if not path.exists():
        raise AispendError(f"no signing key yet ({path}): 'aispend install' creates one")
    k = keys.load_key(path)
    who = principal or git.config(None, "user.email")
    if not who:
        raise AispendError("no principal: pass --principal EMAIL or set git's user.email")
    typer.echo(f"key: {k.path}")
    problem = keys.permissions_problem(k.path)
    if problem:
        typer.echo(f"warning: {problem}; run: chmod 600 {k.path}")
    typer.echo(f"public key: {k.public_line}")
    typer.echo("allowed signers line (add it to .aispend/allowed_signers):")
    typer.echo(keys.allowed_signers_line(who, k.public_line))
