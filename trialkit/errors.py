"""Exceptions for "could not run" — each message names the input and the remedy.

Problems *in* the data are findings (:mod:`trialkit.findings`), never exceptions.
"""

from __future__ import annotations


class TrialkitError(Exception):
    """A run that could not complete; the CLI prints the message and exits with code 3."""


class UsageError(TrialkitError):
    """The command was called wrongly (bad option combination); the CLI exits with code 2."""
