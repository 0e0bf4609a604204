#!/bin/bash
# Network benchmark: what network setup costs on the path of `run`, Berth (berthd: a
# prepared namespace, netlink, nftables only for published ports) against a reference
# Docker daemon (dockerd + libnetwork + iptables + docker-proxy), side by side in one run,
# both driven by the same docker CLI, on a busybox image made here.
#
# What it measures (hyperfine, mean wall time, ms):
#   1. run --rm busybox true                   default bridge network
#   2. run --rm --network none busybox true    no network setup
#   3. run --rm -p 80 busybox true             bridge plus one published port
#   4. run --rm --network <user net> ...       a user-defined network (with embedded DNS)
#   and from those: the network's share of `run` = (1 - 2) / 1 per engine.
# The ratio column is berth/docker (below 1: Berth is faster). No pass/fail; machines are
# noisy, compare ratios within one run.
#
# usage: sudo bash bench/network.sh
# env:   BERTH_BIN (default target/release, built when missing)  RUNS=15
#        DOCKER_CLI=/usr/local/bin/docker  WORK_PARENT=/var/tmp
# needs: root, the docker CLI; installs hyperfine, docker.io, busybox-static when missing.
# Leaves the host as it was: both daemons stopped by pid, mounts and the work dir
# removed, the iptables rules dockerd adds restored from a snapshot taken first, docker0
# removed if this run made it, berthd's bridge and nftables table removed.
# shellcheck disable=SC2086 # flag strings are split on purpose
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
repo=$PWD
runs=${RUNS:-15}
bin=$(realpath -m "${BERTH_BIN:-$repo/target/release}")
DOCKER=${DOCKER_CLI:-/usr/local/bin/docker}
unset DOCKER_HOST DOCKER_CONTEXT

W="" berthd_pid="" dockerd_pid="" containerd_pid="" had_docker0=0
bridge=bnet$$
declare -A CLI R

log() { printf '\n== %s\n' "$*"; }
note() { printf '   %s\n' "$*"; }
ctl() { local e=$1; shift; ${CLI[$e]} "$@"; }

install_deps() {
  local pkgs=()
  [ -x "$DOCKER" ] || { echo "docker CLI not found at $DOCKER (set DOCKER_CLI)" >&2; exit 1; }
  command -v hyperfine >/dev/null || pkgs+=(hyperfine)
  command -v dockerd >/dev/null || pkgs+=(docker.io)
  dpkg -s busybox-static >/dev/null 2>&1 || pkgs+=(busybox-static)
  [ ${#pkgs[@]} = 0 ] && return
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
}

# The repo's own release build is brought up to date (a no-op when it is); a BERTH_BIN
# elsewhere is used as it is.
build_berth() {
  if [ "$bin" = "$repo/target/release" ]; then
    log "building Berth (release) into $bin"
    cargo build --release --locked -q -p berth-daemon -p berth-shim -p berth-cli
  fi
  [ -x "$bin/berthd" ] && [ -x "$bin/berth-shim" ] && [ -x "$bin/berth" ] ||
    { echo "no Berth binaries in $bin" >&2; exit 1; }
}

wait_for_api() { # ENGINE PID LOG
  local i
  for i in $(seq 300); do
    ctl "$1" version >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || { echo "$1 daemon exited:" >&2; tail -20 "$3" >&2; exit 1; }
    sleep 0.1
  done
  echo "$1: API not up after 30 s" >&2; exit 1
}

start_daemons() {
  mkdir -p "$W/berth" "$W/docker"
  CLI[berth]="$DOCKER -H unix://$W/berth/berth.sock"
  CLI[berth-cli]="$bin/berth -H unix://$W/berth/berth.sock"
  "$bin/berthd" -H "unix://$W/berth/berth.sock" --data-root "$W/berth/data" \
    --exec-root "$W/berth/exec" --pidfile "$W/berth/berthd.pid" --bridge "$bridge" \
    >"$W/berth/berthd.log" 2>&1 &
  berthd_pid=$!
  wait_for_api berth "$berthd_pid" "$W/berth/berthd.log"
  echo '{}' >"$W/docker/daemon.json"
  CLI[docker]="$DOCKER -H unix://$W/docker/docker.sock"
  ip link show docker0 >/dev/null 2>&1 && had_docker0=1
  dockerd --config-file "$W/docker/daemon.json" --data-root "$W/docker/root" \
    --exec-root "$W/docker/exec" -H "unix://$W/docker/docker.sock" \
    --pidfile "$W/docker/dockerd.pid" >"$W/docker/dockerd.log" 2>&1 &
  dockerd_pid=$!
  wait_for_api docker "$dockerd_pid" "$W/docker/dockerd.log"
  containerd_pid=$(cat "$W/docker/exec/containerd/containerd.pid")
}

make_image() {
  local r=$W/rootfs a e
  mkdir -p "$r/bin" "$r/etc"
  cp /bin/busybox "$r/bin/busybox"
  for a in $(/bin/busybox --list); do [ -e "$r/bin/$a" ] || ln -s busybox "$r/bin/$a"; done
  tar -C "$r" -cf "$W/busybox.tar" .
  for e in berth docker; do
    ctl "$e" import --change 'CMD ["sh"]' "$W/busybox.tar" busybox:latest >/dev/null
    ctl "$e" network create benchnet >/dev/null
  done
}

bench() { # KEY ARGS
  local key=$1 args=$2 e cmds=()
  for e in berth docker berth-cli; do
    ctl "$e" $args >/dev/null 2>"$W/err" || { note "$e: '$args' failed: $(tail -1 "$W/err")"; continue; }
    cmds+=(-n "$e" "${CLI[$e]} $args")
  done
  hyperfine -N -i --style basic --warmup 3 --runs "$runs" --export-json "$W/$key.json" "${cmds[@]}" >/dev/null
  while read -r e ms; do R[$key/$e]=$ms; done < <(python3 -c '
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(r["command"], r["mean"] * 1000)
' "$W/$key.json")
}

row() { # KEY LABEL
  local b=${R[$1/berth]:-} d=${R[$1/docker]:-} c=${R[$1/berth-cli]:-}
  awk -v l="$2" -v b="$b" -v d="$d" -v c="$c" 'BEGIN {
    printf "%-46s %9.1f %9.1f %12.3f %11.1f %14.3f\n", l, b, d, (d > 0 ? b / d : 0), c, (d > 0 ? c / d : 0) }'
}

share() { # ENGINE
  awk -v a="${R[bridge/$1]:-0}" -v n="${R[none/$1]:-0}" 'BEGIN {
    if (a > 0) printf "%.1f ms of %.1f ms (%.0f%%)", a - n, a, 100 * (a - n) / a; else print "-" }'
}

report() {
  log "results (mean ms; same run for both engines)"
  printf '%-46s %9s %9s %12s %11s %14s\n' "" berthd dockerd berth/docker "berth CLI" berthCLI/docker
  row bridge "run --rm busybox true (default bridge)"
  row none "run --rm --network none busybox true"
  row publish "run --rm -p 80 busybox true (one port)"
  row usernet "run --rm --network benchnet busybox true"
  echo
  note "network share of run --rm (bridge - none): berth $(share berth); docker $(share docker); berth CLI $(share berth-cli)"
  note "berthd from $bin (repo at $(git -C "$repo" rev-parse --short HEAD 2>/dev/null)); dockerd $(ctl docker version --format '{{.Server.Version}}' 2>/dev/null)"
  note "$(nproc) cpus, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg), $runs runs + 3 warmup"
}

stop_pid() { # PID PATTERN: only a process whose command line has PATTERN
  local i
  [ -n "$1" ] && tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -qF -- "$2" || return 0
  kill -TERM "$1" 2>/dev/null || return 0
  for i in $(seq 150); do [ -d "/proc/$1" ] || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
}

cleanup() {
  local rc=$? e ids m
  trap - EXIT INT TERM
  set +e
  [ -n "$W" ] && [ -d "$W" ] || exit $rc
  log "cleaning up"
  for e in berth docker; do
    [ -n "${CLI[$e]:-}" ] || continue
    ids=$(ctl "$e" ps -aq 2>/dev/null); [ -z "$ids" ] || ctl "$e" rm -f $ids >/dev/null 2>&1
    ctl "$e" network rm benchnet >/dev/null 2>&1
  done
  stop_pid "$berthd_pid" "$W/"
  stop_pid "$dockerd_pid" "$W/"
  stop_pid "$containerd_pid" "$W/"
  for m in $(awk -v w="$W/" 'index($5, w) == 1 { print length($5), $5 }' /proc/self/mountinfo | sort -rn | cut -d' ' -f2); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
  # iptables-restore only resets the tables its snapshot names: tables that did not exist
  # before (dockerd makes ip nat and ip filter on a host without any) are deleted instead.
  iptables-restore <"$W/iptables.v4" 2>/dev/null
  ip6tables-restore <"$W/iptables.v6" 2>/dev/null
  nft list tables 2>/dev/null | while read -r _ fam name; do
    grep -qxF "table $fam $name" "$W/nft-tables" || nft delete table "$fam" "$name"
  done
  [ $had_docker0 = 1 ] || ip link del docker0 2>/dev/null
  ip link del "$bridge" 2>/dev/null
  nft delete table ip "berth_$bridge" 2>/dev/null
  ip -br link | grep -E "^(veth|br-|docker0)" && note "WARNING: veths or bridges remain"
  [ "$(nft list tables | sort)" = "$(sort "$W/nft-tables")" ] || note "WARNING: nftables tables differ from before"
  rm -rf "$W"
  exit $rc
}

main() {
  install_deps
  build_berth
  W=$(mktemp -d "${WORK_PARENT:-/var/tmp}/berth-net-bench.XXXXXX")
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  iptables-save >"$W/iptables.v4"
  nft list tables >"$W/nft-tables"
  ip6tables-save >"$W/iptables.v6" 2>/dev/null || true
  start_daemons
  make_image
  log "1. default bridge";           bench bridge "run --rm busybox true"
  log "2. --network none";           bench none "run --rm --network none busybox true"
  log "3. one published port";       bench publish "run --rm -p 80 busybox true"
  log "4. user-defined network";     bench usernet "run --rm --network benchnet busybox true"
  report
}

main "$@"
