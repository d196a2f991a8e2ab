#!/usr/bin/env bash
# Build a pinned livekit-server from its Go module into tools/livekit/bin/livekit-server.
#
# Everything Go writes (module cache, build cache, GOPATH, GOBIN) lives under
# tools/livekit/.go/ so the build depends on nothing but a Go toolchain and the
# Go module proxy. Re-running is a no-op when bin/livekit-server --version
# already reports the pinned version.
#
#   tools/livekit/build.sh            # build (or skip when up to date)
#   tools/livekit/build.sh --force    # rebuild even if the binary matches
#   LIVEKIT_SERVER_VERSION=v1.13.10 tools/livekit/build.sh   # try another tag
set -euo pipefail

# v1.13.5 is the newest release whose dependencies are all on the module proxy: v1.13.6+
# replace pion/webrtc, pion/ice and pion/dtls with livekit forks (github.com/livekit/
# webrtc-pion/v4, ice/v4, dtls/v3 "-warp.N" versions) that the proxy answers 403 for.
PIN="${LIVEKIT_SERVER_VERSION:-v1.13.5}"
GO_MIN="1.26"
MODULE="github.com/livekit/livekit-server"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN_DIR="$HERE/bin"
BIN="$BIN_DIR/livekit-server"
GO_ROOT_LOCAL="$HERE/.go"

force=0
[[ "${1:-}" == "--force" ]] && force=1

if ! command -v go >/dev/null 2>&1; then
    echo "build.sh: Go toolchain not found on PATH (need go >= $GO_MIN to build livekit-server $PIN)" >&2
    exit 2
fi

# livekit-server v1.13.x declares `go 1.26` in its go.mod; GOTOOLCHAIN=local below forbids
# fetching a newer toolchain, so say so up front instead of failing mid-build.
gover="$(go env GOVERSION 2>/dev/null | sed 's/^go//')"
if [[ "$(printf '%s\n' "$GO_MIN" "$gover" | sort -V | head -1)" != "$GO_MIN" ]]; then
    echo "build.sh: go $gover is too old; livekit-server $PIN needs go >= $GO_MIN" >&2
    exit 2
fi

want="${PIN#v}"
if [[ $force -eq 0 && -x "$BIN" ]]; then
    have="$("$BIN" --version 2>/dev/null | awk '{print $NF}')" || have=""
    if [[ "$have" == "$want" ]]; then
        echo "build.sh: $BIN is already livekit-server $want; skipping"
        exit 0
    fi
fi

export GOPATH="$GO_ROOT_LOCAL/path"
export GOMODCACHE="$GO_ROOT_LOCAL/mod"
export GOCACHE="$GO_ROOT_LOCAL/cache"
export GOBIN="$GO_ROOT_LOCAL/path/bin"
export GOTOOLCHAIN=local          # never download another toolchain
# the configured module proxy only: drop any "direct" (VCS) fallback
proxy="$(go env GOPROXY)"
proxy="${proxy//,direct/}"; proxy="${proxy//|direct/}"
if [[ -z "$proxy" || "$proxy" == "direct" || "$proxy" == "off" ]]; then
    echo "build.sh: GOPROXY is '$(go env GOPROXY)'; need a Go module proxy to build livekit-server" >&2
    exit 2
fi
export GOPROXY="$proxy"
export GOFLAGS="-buildvcs=false -mod=readonly -modcacherw"   # -modcacherw: `rm -rf .go` works
export CGO_ENABLED=0
mkdir -p "$GOPATH" "$GOMODCACHE" "$GOCACHE" "$GOBIN" "$BIN_DIR"

echo "build.sh: $(go version); fetching $MODULE@$PIN"
# The module has replace directives (pion forks), so `go install mod@ver` refuses it;
# download the module source and build inside its own module instead.
src="$(go mod download -json "$MODULE@$PIN" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
if [[ -z "$src" || ! -d "$src" ]]; then
    echo "build.sh: could not download $MODULE@$PIN from the module proxy" >&2
    exit 3
fi

echo "build.sh: building $src/cmd/server -> $BIN"
tmp="$BIN.tmp.$$"
(cd "$src" && go build -trimpath -ldflags "-s -w" -o "$tmp" ./cmd/server)
mv -f "$tmp" "$BIN"
echo "build.sh: built $("$BIN" --version)"
