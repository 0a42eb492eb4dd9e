#!/usr/bin/env bash
# Installs calibd from this checkout as a systemd service on a Debian-based device
# (Raspberry Pi OS, Jetson Linux, Debian, Ubuntu).
#
#   sudo scripts/install.sh [--prefix DIR] [--no-start] [--dry-run]
#
# Safe to re-run: it upgrades the code in the prefix, rewrites the unit only when it
# changed, and never touches an existing /etc/calibd/config.yaml or the state in
# /var/lib/calibd. --dry-run changes nothing and prints each step it would take.
set -euo pipefail

PREFIX=/opt/calibd
CONFIG_DIR=/etc/calibd
CONFIG_FILE="$CONFIG_DIR/config.yaml"
UNIT_FILE=/etc/systemd/system/calibd.service
STATE_DIR=/var/lib/calibd
DRY_RUN=0
START=1
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
  cat <<EOF
Usage: $0 [--prefix DIR] [--no-start] [--dry-run]
  --prefix DIR  install the code to DIR (default $PREFIX)
  --no-start    install and reload systemd, but do not enable or start calibd
  --dry-run     print what would be done; change nothing (no root needed)
EOF
}

note() { printf 'calibd-install: %s\n' "$*"; }
die() { printf 'calibd-install: error: %s\n' "$*" >&2; exit 1; }

# Every change to the machine goes through run, so --dry-run is exactly the real run
# minus its effects.
run() {
  if [ "$DRY_RUN" = 1 ]; then
    printf '[dry-run]'
    printf ' %q' "$@"
    printf '\n'
  else
    "$@"
  fi
}

# write_file DEST MODE: content on stdin. Atomic (temp file + rename) so a power cut
# never leaves a half-written config or unit.
write_file() {
  local dest=$1 mode=$2 tmp
  if [ "$DRY_RUN" = 1 ]; then
    printf '[dry-run] write %s (mode %s):\n' "$dest" "$mode"
    sed 's/^/    | /'
    return
  fi
  tmp="$(mktemp "$dest.XXXXXX")"
  cat >"$tmp"
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$dest"
}

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix)
      [ $# -ge 2 ] || die "--prefix needs a directory"
      PREFIX=$2
      shift 2
      ;;
    --prefix=*) PREFIX=${1#--prefix=}; shift ;;
    --no-start) START=0; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

case "$PREFIX" in
  /?*) PREFIX="${PREFIX%/}" ;;
  *) die "--prefix must be an absolute directory other than /, got '$PREFIX'" ;;
esac

# ---------------------------------------------------------------- preflight (no changes)

if [ "$DRY_RUN" = 0 ] && [ "$(id -u)" != 0 ]; then
  die "run as root (sudo $0 $*), or try --dry-run"
fi
command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this installer is for Debian-based systems"

NODE="$(command -v node || true)"
node_help="Install Node.js 20 or newer, then re-run. Options: 'apt-get install nodejs' where
the release ships >= 20 (Debian 13, Ubuntu 24.04); otherwise NodeSource's apt repository
for Node 20/22, or the official Linux arm64/x64 tarball from the Node.js download page,
unpacked so that 'node' and 'npm' are on PATH."
[ -n "$NODE" ] || die "node not found. $node_help"
NODE_MAJOR="$("$NODE" -p 'process.versions.node.split(".")[0]')"
[ "$NODE_MAJOR" -ge 20 ] || die "node $("$NODE" --version) is too old; calibd needs >= 20. $node_help"
command -v npm >/dev/null 2>&1 || die "npm not found next to node ($NODE). $node_help"
note "using node $("$NODE" --version) at $NODE"

if [ ! -f "$CONFIG_FILE" ] && [ ! -f "$SRC/config/default.yaml" ]; then
  if [ "$DRY_RUN" = 1 ]; then
    note "warning: $SRC/config/default.yaml is missing, a real run would stop here"
  else
    die "$CONFIG_FILE does not exist and this checkout has no config/default.yaml to start it from"
  fi
fi

HAVE_SYSTEMD=0
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  HAVE_SYSTEMD=1
else
  note "warning: systemd is not running here (container or chroot?): the unit is installed but not started"
fi

# ---------------------------------------------------------------- build tools

# better-sqlite3 compiles from source on ARM when no prebuilt binary can be fetched,
# which needs a C++ toolchain and python3 (node-gyp).
missing=()
if ! dpkg-query -W -f='${Status}' build-essential 2>/dev/null | grep -q 'install ok installed'; then
  missing+=(build-essential)
fi
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if [ ${#missing[@]} -gt 0 ]; then
  note "installing ${missing[*]} (needed to compile better-sqlite3)"
  run apt-get update
  run env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
else
  note "build-essential and python3 already present"
fi

# ---------------------------------------------------------------- compiled JavaScript

# `npm ci --omit=dev` runs the package's prepare script, which calls tsc, a dev
# dependency that --omit=dev leaves out. So dist/ is built here, in the checkout, and
# the prefix installs with --ignore-scripts (see below).
if [ -x "$SRC/node_modules/.bin/tsc" ]; then
  note "building dist/ in $SRC"
  run npm --prefix "$SRC" run build
elif [ ! -d "$SRC/dist" ]; then
  note "no dist/ and no dev dependencies in $SRC: installing them to build (npm ci runs the build)"
  run npm --prefix "$SRC" ci --no-audit --no-fund
else
  note "using the existing dist/ in $SRC (no TypeScript compiler here to rebuild it)"
fi

# ---------------------------------------------------------------- code in the prefix

if [ "$SRC" = "$PREFIX" ]; then
  note "installing in place: $PREFIX is this checkout"
else
  note "copying $SRC to $PREFIX"
  run mkdir -p "$PREFIX"
  # Old compiled files must not linger next to new ones.
  run rm -rf "$PREFIX/dist" "$PREFIX/bin"
  if [ "$DRY_RUN" = 1 ]; then
    printf '[dry-run] tar -C %q (without node_modules .git var data tmp) | tar -C %q -x\n' "$SRC" "$PREFIX"
  else
    tar -C "$SRC" --exclude=./node_modules --exclude=./.git --exclude=./var \
      --exclude=./data --exclude=./tmp --exclude='*.log' -cf - . | tar -C "$PREFIX" -xf -
  fi
fi

# Production dependencies only. --ignore-scripts skips our own prepare (tsc, see above);
# npm rebuild then runs the dependencies' install scripts: better-sqlite3's native build,
# and onnxruntime-node's, which the repo's .npmrc tells to skip the CUDA download.
note "installing production dependencies in $PREFIX"
run npm --prefix "$PREFIX" ci --omit=dev --ignore-scripts --no-audit --no-fund
run npm --prefix "$PREFIX" rebuild --no-audit --no-fund

# ---------------------------------------------------------------- configuration

run mkdir -p "$CONFIG_DIR"
if [ -f "$CONFIG_FILE" ]; then
  note "keeping existing $CONFIG_FILE"
elif [ -f "$SRC/config/default.yaml" ]; then
  note "writing $CONFIG_FILE from config/default.yaml (stateDir: $STATE_DIR)"
  if ! grep -qE '^[[:space:]]*stateDir:' "$SRC/config/default.yaml"; then
    note "warning: config/default.yaml has no stateDir key; the unit's CALIBD_STATE_DIR still points at $STATE_DIR"
  fi
  # World-readable on purpose: the service runs as a dynamic user. Secrets do not belong
  # here; the MQTT password goes in a credential (below).
  sed -E "s#^([[:space:]]*stateDir:).*#\\1 $STATE_DIR#" "$SRC/config/default.yaml" | write_file "$CONFIG_FILE" 0644
  note "set the MQTT broker url in $CONFIG_FILE (left for you to fill in)"
fi

# The unit loads the optional MQTT password from the credential store (see the unit).
run install -d -m 0700 /etc/credstore

# ---------------------------------------------------------------- systemd unit

# The unit names /usr/bin/node and /opt/calibd; point it at this node and prefix.
unit="$(sed -e "s#^ExecStart=/usr/bin/node /opt/calibd/#ExecStart=$NODE $PREFIX/#" \
             -e "s#^WorkingDirectory=/opt/calibd\$#WorkingDirectory=$PREFIX#" \
             -e "s#file:///opt/calibd/#file://$PREFIX/#" \
             "$SRC/systemd/calibd.service")"
if [ -f "$UNIT_FILE" ] && [ "$(cat "$UNIT_FILE")" = "$unit" ]; then
  note "$UNIT_FILE is up to date"
else
  note "installing $UNIT_FILE"
  printf '%s\n' "$unit" | write_file "$UNIT_FILE" 0644
fi

if [ "$HAVE_SYSTEMD" = 1 ]; then
  was_active=0
  systemctl is-active --quiet calibd.service && was_active=1
  run systemctl daemon-reload
  if [ "$START" = 1 ]; then
    run systemctl enable --now calibd.service
    # enable --now leaves a running service on the old code; an upgrade must restart it.
    if [ "$was_active" = 1 ]; then
      run systemctl restart calibd.service
    fi
  fi
fi

note "done. Optional MQTT password: write it to /etc/credstore/calibd.mqtt-password (mode 0600),"
note "then systemctl restart calibd. Logs: journalctl -u calibd -f"
