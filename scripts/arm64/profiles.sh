# Shared by the arm64 scripts: paths, the two CPU profiles, and how to run the arm64 Node.
# shellcheck shell=bash
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${CALIBD_ARM64_CACHE:-$REPO/.cache/arm64}"
NODE_VERSION=20.20.2
NODE_ARM64="$CACHE/node/bin/node"
APP="$CACHE/app"
PROFILES="${CALIBD_ARM64_PROFILES:-pi4 pi5}"

# QEMU_CPU of each profile; the faked cpuinfo below must claim what that CPU has.
qemu_cpu() {
  case "$1" in
    pi4) echo cortex-a72 ;;
    pi5) echo cortex-a76 ;;
    *) echo "unknown arm64 profile '$1' (pi4 or pi5)" >&2; return 1 ;;
  esac
}

# The CPU name calibd reads back from the profile's cpuinfo (its --auto record names it).
cpu_name() {
  case "$1" in
    pi4) echo Cortex-A72 ;;
    pi5) echo Cortex-A76 ;;
  esac
}

describe_profile() {
  case "$1" in
    pi4) echo "Raspberry Pi 4: Cortex-A72, no dot product" ;;
    pi5) echo "Raspberry Pi 5: Cortex-A76, dot product (asimddp)" ;;
  esac
}

# An ARM /proc/cpuinfo as the Linux kernel writes it on that board, one entry per host CPU
# (ONNX Runtime's cpuinfo matches the entries against /sys/devices/system/cpu).
write_cpuinfo() {
  local features variant part revision n i
  case "$1" in
    # BCM2711 has no crypto extensions; an A72 is ARMv8.0: no atomics, no dot product.
    pi4) features="fp asimd evtstrm crc32 cpuid"; variant=0x0; part=0xd08; revision=3 ;;
    # BCM2712: ARMv8.2 with dot product.
    pi5) features="fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"; variant=0x4; part=0xd0b; revision=1 ;;
    *) echo "unknown arm64 profile '$1'" >&2; return 1 ;;
  esac
  n="$(getconf _NPROCESSORS_CONF)"
  for ((i = 0; i < n; i++)); do
    printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: %s\nCPU part\t: %s\nCPU revision\t: %d\n\n' \
      "$i" "$features" "$variant" "$part" "$revision"
  done
}

# arm64_node PROFILE ARGS…: the arm64 Node under qemu-user, in a private mount namespace
# whose /proc/cpuinfo is the profile's ARM one (ORT's CPU detection crashes on the x86 one).
# No -L: with the cross toolchain installed it makes Node spin at start. exec all the way
# down, so the caller's PID is qemu's and a SIGKILL reaches it.
arm64_node() {
  local profile="$1"; shift
  local cpu; cpu="$(qemu_cpu "$profile")" || return 1
  exec unshare -m sh -c 'mount --bind "$1" /proc/cpuinfo && QEMU_CPU="$2" && export QEMU_CPU && shift 2 && exec qemu-aarch64-static "$@"' \
    sh "$CACHE/cpuinfo-$profile" "$cpu" "$NODE_ARM64" "$@"
}
