"""``rxrealtime models``: the service's realtime models; and the ``--model``, ``--speed``
and ``--price`` handling that ``watch`` and ``dashboard`` share.

The catalogue itself is :mod:`rxrealtime.models`; this module only prints it, so that a
user can see which names are current, which tiers each offers and what an old name now
resolves to without reading the source or the vendor's SDK.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from ..billing import SPEED_MULTIPLIERS
from ..exceptions import ConfigError
from ..models import DEFAULT_MODEL, ModelEntry
from ..models import list as list_models

__all__ = ["add_model_flags", "add_models_command", "price_table", "render_models", "run_models"]


def add_models_command(sub: Any) -> None:
    """``models [--all] [--json]``."""
    models = sub.add_parser("models", help="the realtime models: size, fps, speed tiers, aliases")
    models.add_argument(
        "--all", action="store_true", help="also the deprecated names and what they resolve to"
    )
    models.add_argument("--json", action="store_true", help="the rows as one JSON array")


def add_model_flags(parser: argparse.ArgumentParser, *, required: bool = False) -> None:
    """``--model`` (default: the current default model, unless ``required``) and
    ``--speed``, the tier asked of the service (sent as ``&speed=``)."""
    if required:
        parser.add_argument("--model", required=True, help="`rxrealtime models` lists them")
    else:
        help = f"default: {DEFAULT_MODEL}; `rxrealtime models` lists them"
        parser.add_argument("--model", default=DEFAULT_MODEL, help=help)
    parser.add_argument("--speed", default=None, metavar="TIER",
                        help="a speed tier, e.g. fast (billed at 2x the standard rate; "
                        "for the models `rxrealtime models` shows it for)")  # fmt: skip


def price_table(args: argparse.Namespace) -> dict[str, str] | None:
    """The ``--price MODEL=RATE`` entries as a price table (``lucy-2.6:fast=0.03`` prices
    a tier of its own); ``--rate`` and ``--price`` exclude each other. The watch looks
    the session's model and tier up in it (:func:`rxrealtime.billing.resolve_rate`)."""
    if not args.price:
        return None
    if args.rate is not None:
        raise ConfigError("give either --rate or --price, not both")
    return dict(args.price)


def _row_json(row: ModelEntry) -> dict[str, Any]:
    return {**row.model_dump(), "default": row.name == DEFAULT_MODEL}


def render_models(rows: list[ModelEntry], console: Console) -> None:
    """The rows as a rich table, with the default model and the tiers' prices below."""
    deprecated = any(r.deprecated for r in rows)
    table = Table(box=box.SIMPLE_HEAD, title="realtime models", title_justify="left")
    for column in ("name", "size", "fps", "speed tiers", "alias of"):
        table.add_column(column)
    if deprecated:
        table.add_column("deprecated: resolves to")
    for r in rows:
        cells = [r.name, f"{r.width}x{r.height}", str(r.fps), ", ".join(r.speeds),
                 r.alias_of or ""]  # fmt: skip
        if deprecated:
            cells.append((r.replaced_by or "(none: its own endpoint)") if r.deprecated else "")
        table.add_row(*cells, style="dim" if r.deprecated else None)
    console.print(table)
    tiers = ", ".join(f"{t} {m}x" for t, m in SPEED_MULTIPLIERS.items())
    console.print(f"default: {DEFAULT_MODEL}; billed per tier: {tiers} the standard rate")
    if not deprecated:
        console.print("--all also lists the deprecated names")


def run_models(args: argparse.Namespace) -> int:
    """Print the catalogue (``--all``: with the deprecated names) as a table or JSON."""
    rows = list_models(include_deprecated=args.all)
    if args.json:
        print(json.dumps([_row_json(r) for r in rows]))
        return 0
    # Not a terminal (a pipe, a test): wide enough for every column rather than 80.
    render_models(rows, Console(width=None if sys.stdout.isatty() else 120))
    return 0
