"""aispend: what did that commit cost?

Reads AI coding agents' local session logs (Claude Code, Codex) into a local
SQLite index and binds their token spend to git commits.
"""

__version__ = "0.1.0.dev0"
