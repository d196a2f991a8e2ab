"""The command line: ``rxrealtime demo | serve | watch | dashboard | check | tape | fleet |
bench``.

:mod:`rxrealtime.cli.main` parses the arguments; each command's work sits in a module of
its own (``_demo``, ``_watch``, ``_tape``, :mod:`rxrealtime.cli.bench`).
"""

from __future__ import annotations

from .main import main

__all__ = ["main"]
