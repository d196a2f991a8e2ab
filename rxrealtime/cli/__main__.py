"""``python -m rxrealtime.cli``: the same as the ``rxrealtime`` command."""

from .main import main

raise SystemExit(main())
