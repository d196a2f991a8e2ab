#!/usr/bin/env bash
# Run the locally built livekit-server in dev mode on loopback only (foreground).
#   tools/livekit/run.sh                 # ws://127.0.0.1:7880, UDP 7882, keys devkey/secret
#   tools/livekit/run.sh --config-body "$(cat my.yaml)"   # extra args go to livekit-server
# For tests on free ports use tools/livekit/server.py (start_livekit_server()).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN="$HERE/bin/livekit-server"
if [[ ! -x "$BIN" ]]; then
    echo "run.sh: $BIN missing; run tools/livekit/build.sh first" >&2
    exit 2
fi
exec "$BIN" --dev --config "$HERE/dev.yaml" --bind 127.0.0.1 --node-ip 127.0.0.1 "$@"
