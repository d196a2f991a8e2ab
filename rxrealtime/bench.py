"""``rxrealtime bench [decode|dispatch|e2e|scale] [--json] [--quick]``: the benchmark suite.

A thin public face over :mod:`rxrealtime._bench`, which holds the suites so that an
installed package can run them; ``python -m benchmarks`` in the repository and
``make bench`` call the same code. ``benchmarks/README.md`` explains each suite.
"""

from __future__ import annotations

from ._bench._common import Config
from ._bench.runner import SUITES, add_arguments, main, run_from_args, run_suites

__all__ = ["SUITES", "Config", "add_arguments", "main", "run_from_args", "run_suites"]
