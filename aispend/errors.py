"""The one exception type for expected failures.

An :class:`AispendError` becomes a single line on stderr and exit status 1;
anything else is a bug and becomes a crash log (see ``aispend.cli``).
"""


class AispendError(Exception):
    """An expected failure: bad input, a missing file, a bad option value."""
