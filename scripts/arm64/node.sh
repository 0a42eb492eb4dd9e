#!/usr/bin/env bash
# scripts/arm64/node.sh PROFILE ARGS…  runs the arm64 Node.js under emulation as that CPU
# profile (pi4 | pi5). Run scripts/arm64/setup.sh first. Its PID is qemu's own.
set -euo pipefail
. "$(dirname "$0")/profiles.sh"
[ $# -ge 1 ] || { echo "usage: scripts/arm64/node.sh pi4|pi5 ARGS…" >&2; exit 2; }
[ -x "$NODE_ARM64" ] && [ -f "$CACHE/cpuinfo-$1" ] || { echo "arm64: not set up; run scripts/arm64/setup.sh (as root)" >&2; exit 2; }
arm64_node "$@"
