#!/bin/bash
# Shared by the side-by-side benchmarks (build.sh, observe.sh): a private berthd and a
# private dockerd under one work directory, both driven by the same docker CLI, a busybox
# image made from Debian's busybox-static, timing and median helpers, and a cleanup that
# removes the containers, stops what was started (by pid) and removes the work directory,
# also on failure.
#
# Source it after `set -euo pipefail`; call bench_start NAME, then use ctl ENGINE ...,
# timed OP ENGINE CMD..., median "LIST", ratio B D. Results go into T[op/engine].

bench_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${BIN:-$bench_repo/target/release}
DOCKER=${DOCKER_CLI:-$(command -v docker || echo /usr/local/bin/docker)}
unset DOCKER_HOST DOCKER_CONTEXT
W=""
bench_bridge=""
bench_pids=()
declare -A T

log() { printf '\n== %s\n' "$*"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

bench_cleanup() {
  local p e
  # Containers first: Berth's outlive berthd (their shims are not its children).
  for e in berth docker; do
    [ -S "$W/$e/sock" ] || continue
    # shellcheck disable=SC2046 # the id list is split on purpose
    ctl "$e" rm -f $(ctl "$e" ps -aq 2>/dev/null) >/dev/null 2>&1 || true
  done
  for p in "${bench_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${bench_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  [ -n "$bench_bridge" ] && { ip link del "$bench_bridge" 2>/dev/null || true; }
  [ -n "$bench_bridge" ] && { nft delete table ip "berth_$bench_bridge" 2>/dev/null || true; }
  if [ -n "$W" ]; then
    grep " $W" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$W"
  fi
}

# The docker CLI against one engine's private socket.
ctl() { local e=$1; shift; DOCKER_BUILDKIT=0 "$DOCKER" -H "unix://$W/$e/sock" "$@"; }
# Berth's own CLI against berthd.
berth_cli() { BERTH_HOST="unix://$W/berth/sock" "$bin/berth" "$@"; }

bench_wait_for() {
  local i
  for i in $(seq 300); do ctl "$1" version >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "$1 did not come up; its log:" >&2
  tail -20 "$W/$1/log" >&2
  exit 1
}

# Starts berthd and dockerd (no bridge, no iptables) and imports busybox:latest into both.
bench_start() {
  [ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
  command -v dockerd >/dev/null || { echo "dockerd is missing: apt-get install docker.io" >&2; exit 1; }
  if [ ! -x "$bin/berthd" ] || [ ! -x "$bin/berth" ]; then
    log "building Berth (release)"
    (cd "$bench_repo" && CARGO_TARGET_DIR=$(dirname "$bin") cargo build --release --locked -q \
      -p berth-daemon -p berth-shim -p berth-runtime-cli -p berth-cli)
  fi
  W=$(mktemp -d "/var/tmp/berth-bench-$1.XXXXXX")
  bench_bridge=b$1$$
  bench_bridge=${bench_bridge:0:15}
  trap bench_cleanup EXIT
  mkdir -p "$W/berth" "$W/docker" "$W/rootfs/bin" "$W/rootfs/etc"
  "$bin/berthd" -H "unix://$W/berth/sock" --data-root "$W/berth/data" --exec-root "$W/berth/exec" \
    --pidfile "$W/berth/pid" --bridge "$bench_bridge" >"$W/berth/log" 2>&1 &
  bench_pids+=($!)
  echo '{}' >"$W/docker/daemon.json"
  dockerd --config-file "$W/docker/daemon.json" --data-root "$W/docker/root" --exec-root "$W/docker/exec" \
    -H "unix://$W/docker/sock" --pidfile "$W/docker/pid" --iptables=false --bridge=none \
    >"$W/docker/log" 2>&1 &
  bench_pids+=($!)
  bench_wait_for berth
  bench_wait_for docker
  cp /bin/busybox "$W/rootfs/bin/busybox"
  local a
  for a in $(/bin/busybox --list); do [ -e "$W/rootfs/bin/$a" ] || ln -s busybox "$W/rootfs/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$W/rootfs/etc/passwd"
  tar -C "$W/rootfs" -cf "$W/busybox.tar" .
  for a in berth docker; do ctl "$a" import "$W/busybox.tar" busybox:latest >/dev/null; done
}

# timed OP ENGINE CMD...: runs CMD (output dropped), adds its wall time in ms to T[OP/ENGINE].
timed() {
  local op=$1 e=$2 t0 t1
  shift 2
  t0=$(now_ms)
  "$@" >/dev/null 2>&1
  t1=$(now_ms)
  T[$op/$e]+="$((t1 - t0)) "
}

median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { awk -v b="$1" -v d="$2" 'BEGIN {printf "%.3f", (d > 0 ? b / d : 0)}'; }
every_time() { printf '\n(every time: %s)\n' "$(for k in "${!T[@]}"; do printf '%s=[%s] ' "$k" "${T[$k]% }"; done)"; }
