"""``python -m aispend``: the same CLI as the ``aispend`` command."""

from aispend.cli import main

main()
