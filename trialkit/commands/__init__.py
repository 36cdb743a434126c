"""One module per CLI command; each exposes ``command`` (a click command).

Commands are thin: parse options, call one library function, render, exit. Shared options are the
decorators in :mod:`trialkit.commands.options`.
"""
