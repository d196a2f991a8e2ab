"""What ``import rxrealtime`` costs: no media stack, no server, no side effects.

Checked in a fresh interpreter, by the modules an import pulls in (not its time, which
depends on the machine).
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("aiortc", "aioice", "av", "numpy", "aiohttp", "rxrealtime.server", "rxrealtime.media")


def loaded_after(code: str) -> set[str]:
    script = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_import_rxrealtime_loads_no_media_stack_and_no_server() -> None:
    loaded = loaded_after("import rxrealtime")
    assert "rxrealtime.exceptions" in loaded  # the import did run
    assert sorted(m for m in HEAVY if m in loaded) == []


def test_a_decoder_only_user_pays_for_msgspec_alone() -> None:
    loaded = loaded_after("import rxrealtime.protocol")
    assert sorted(m for m in (*HEAVY, "pydantic", "reactivex") if m in loaded) == []


def test_operators_load_on_first_use_and_never_the_network_or_media_stack() -> None:
    loaded = loaded_after("import rxrealtime.operators")
    assert "rxrealtime.operators._types" in loaded  # the import did run
    assert sorted(m for m in (*HEAVY, "pydantic", "reactivex") if m in loaded) == []
    used = loaded_after("import rxrealtime.operators as rto\nrto.billed_seconds()\nrto.BurnRate")
    assert {
        "reactivex",
        "rxrealtime.operators._billedseconds",
        "rxrealtime.operators._burnrate",
    } <= used
    assert sorted(m for m in (*HEAVY, "pydantic") if m in used) == []


def test_a_session_loads_no_network_or_media_stack_until_it_connects() -> None:
    loaded = loaded_after("import rxrealtime as rt\nrt.Session('ws://127.0.0.1:9', api_key='k')")
    assert "rxrealtime.session" in loaded and "reactivex" in loaded
    assert sorted(m for m in HEAVY if m in loaded) == []


def test_the_server_and_media_load_on_first_use() -> None:
    loaded = loaded_after("import rxrealtime as rt\nrt.serve_embedded\nrt.media.SyntheticTrack")
    assert {"rxrealtime.server", "rxrealtime.media", "aiortc"} <= loaded


def test_import_does_not_patch_aioice() -> None:
    code = (
        "import aioice.ice\noriginal = aioice.ice.get_host_addresses\nimport rxrealtime\n"
        "import rxrealtime.transports.ice\n"
        "assert aioice.ice.get_host_addresses is original, 'patched'"
    )
    loaded_after(code)  # raises CalledProcessError if the assertion fails


def test_loopback_gathering_is_installed_on_first_use_and_scoped() -> None:
    from aioice import ice as aioice_ice

    from rxrealtime.transports.ice import gather_on_loopback

    with gather_on_loopback():
        assert aioice_ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == ["127.0.0.1"]
    assert "127.0.0.1" not in aioice_ice.get_host_addresses(use_ipv4=True, use_ipv6=False)
