"""``rxrealtime bench [SUITE ...] [--json] [--quick] [--strict]``: the benchmark suite.

A thin public face over :mod:`rxrealtime.cli._bench`, which holds the suites so that an
installed package can run them; ``python -m benchmarks`` in the repository and
``make bench`` call the same code. ``benchmarks/README.md`` explains each suite.
"""

from __future__ import annotations

from ._bench._common import Config
from ._bench._report import summary_table
from ._bench.runner import SUITES, add_arguments, exit_code, main, run_from_args, run_suites

__all__ = [
    "SUITES",
    "Config",
    "add_arguments",
    "exit_code",
    "main",
    "run_from_args",
    "run_suites",
    "summary_table",
]
