"""The repository's entry to the benchmark suite: ``python -m benchmarks`` (``make bench``).

The suites live in :mod:`rxrealtime.cli._bench` so that ``rxrealtime bench`` also works from
an installed package; this folder holds the entry point, ``README.md`` and ``results/``.
"""
