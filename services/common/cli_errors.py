"""The error every `daybreak` command raises to report a problem on one line."""

from __future__ import annotations


class CliError(Exception):
    """A problem to report on one line, exiting non-zero."""
