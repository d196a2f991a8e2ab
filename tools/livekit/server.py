"""The livekit-server launcher, for the scripts here: ``rxrealtime/server/livekit_server.py``.

That module is the one implementation (the embedded server and the tests use it); it is
loaded here by path, standard library only, so smoke.py and vendor_e2e.py run in any venv,
one without rxrealtime included::

    import sys; sys.path.insert(0, "tools/livekit")
    from server import LiveKitServer, free_port

Run ``python tools/livekit/server.py`` to start one in the foreground and print its URL.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "rxrealtime" / "server" / "livekit_server.py"
_spec = importlib.util.spec_from_file_location("rxrealtime_livekit_server", _PATH)
assert _spec is not None and _spec.loader is not None
_launcher = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _launcher
_spec.loader.exec_module(_launcher)

LiveKitServer = _launcher.LiveKitServer
LiveKitServerError = _launcher.LiveKitServerError
find_livekit_binary = _launcher.find_livekit_binary
free_port = _launcher.free_port
render_config = _launcher.render_config

__all__ = ["LiveKitServer", "LiveKitServerError", "find_livekit_binary", "free_port"]


if __name__ == "__main__":
    srv = LiveKitServer()
    srv.start()
    print(
        f"livekit-server ready: url={srv.url} key={srv.api_key} secret={srv.api_secret} "
        f"udp={srv.udp_port} log={srv.log_path}",
        flush=True,
    )
    try:
        while srv.proc is not None and srv.proc.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        srv.close()
