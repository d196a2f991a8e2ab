"""``python -m benchmarks [decode|dispatch|e2e|scale] [--json] [--quick]``."""

from __future__ import annotations

from rxrealtime.cli.bench import main

raise SystemExit(main())
