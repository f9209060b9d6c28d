"""The ``aispend`` command line: argument parsing and dispatch only.

Each command lives in its own module and calls into the library. Expected
failures (:class:`aispend.errors.AispendError`) print one line and exit 1;
anything else is a bug: a short message, a crash log, exit 3.
"""

from __future__ import annotations

import sys
from typing import Optional

import typer

from aispend import __version__
from aispend.errors import AispendError

app = typer.Typer(
    name="aispend",
    help="What did that commit cost? AI coding-agent spend from local session logs, bound to git commits.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"aispend {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """What did that commit cost? AI coding-agent spend from local session logs."""


def _register() -> None:
    from aispend.cli import budget, carry, doctor, export, hook, ingest, install, key, pricing, report, show, status, sync, usage, verify

    app.command("install")(install.install)
    app.command("uninstall")(install.uninstall)
    app.command("show")(show.show)
    app.command("verify")(verify.verify)
    app.command("status")(status.status)
    app.command("key")(key.key)
    app.command("doctor")(doctor.doctor)
    app.command("sync")(sync.sync)
    app.command("carry")(carry.carry)
    app.command("report")(report.report)
    app.command("budget")(budget.budget)
    app.command("export")(export.export)
    app.command("ingest")(ingest.ingest)
    app.command("usage")(usage.usage)
    app.add_typer(pricing.app, name="pricing")
    app.command("hook", hidden=True)(hook.hook)


_register()


def _is_usage_error(e: Exception) -> bool:
    """A click usage error (bad option, missing argument), whichever click typer carries."""
    return any(c.__name__ == "ClickException" for c in type(e).__mro__) and hasattr(e, "show")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    command = typer.main.get_command(app)
    try:
        rc = command.main(args=argv, prog_name="aispend", standalone_mode=False)
    except AispendError as e:
        typer.echo(f"aispend: error: {e}", err=True)
        sys.exit(1)
    except typer.Abort:
        typer.echo("aispend: aborted", err=True)
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        typer.echo("aispend: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as e:
        if _is_usage_error(e):
            e.show()  # type: ignore[attr-defined]
            sys.exit(e.exit_code)  # type: ignore[attr-defined]
        from aispend.index.db import storage_problem

        problem = storage_problem(e)  # no room or no rights for the index: say so, plainly
        if problem is not None:
            typer.echo(f"aispend: error: {problem}", err=True)
            sys.exit(1)
        # A bug: keep the details, show a short message.
        from aispend.cli.crash import write_crash_log

        path = write_crash_log(e)
        where = f"; details in {path}" if path else ""
        typer.echo(f"aispend: unexpected error: {type(e).__name__}: {e}{where}", err=True)
        typer.echo("aispend: please report it with that file attached", err=True)
        sys.exit(3)
    sys.exit(rc if isinstance(rc, int) else 0)
