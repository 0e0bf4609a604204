#!/bin/bash
# Engine benchmark: Berth's daemon (berthd, one berth-shim per container) against a
# reference Docker daemon (dockerd + its containerd, one containerd-shim-runc-v2 per
# container) and podman (no daemon, one conmon per container) where it works, side by
# side in one run, on the same busybox image made here from Debian's busybox-static.
#
# What it measures, for each engine:
#   1. `run --rm busybox true`                  hyperfine, mean wall time
#   2. `run -d busybox sleep 1000`              wall time per start, N starts interleaved
#                                               across the engines (they stay running)
#   3. `exec <running container> true`          hyperfine, mean wall time
#   4. `ps` with N containers running           hyperfine, mean wall time
#   5. idle daemon memory, after start and image import: berthd alone against
#      dockerd + containerd (podman has no daemon)
#   6. memory with N `sleep` containers running: the daemon(s) plus the per-container
#      shims (berth-shim / containerd-shim-runc-v2 / conmon), totals and per-shim average
#   and, last, `rm -f` of those N containers in one command.
#
# How to read it: times in ms (rm in s), memory in MiB from /proc/PID/status (VmRSS) and
# /proc/PID/smaps_rollup (Pss, Private_*). RSS counts shared pages (the binary, libraries)
# in every process that maps them; PSS splits them among the sharers, so for N identical
# shims the PSS total is the fairer one; USS (private pages only) is what one more shim
# costs. The column berth/docker is the ratio (below 1: Berth is faster or smaller);
# "goal" repeats the issue's targets for orientation. This machine is noisy: compare
# ratios from one run, not absolute figures across runs. There is no pass/fail.
# Fairness: berthd and dockerd are driven by the same client, the docker CLI ($DOCKER_CLI),
# so only the daemons differ (Berth's own CLI has rows of its own); podman by its CLI. Every
# container gets --network none, so this measures the engines without network setup
# (bench/network.sh measures that); dockerd runs with --bridge=none --iptables=false so it
# leaves host networking alone, and berthd gets a bridge of its own that is removed after. podman runs with --runtime runc and --ulimit nofile/nproc
# set (its default limits are refused on this kind of machine).
#
# usage: sudo bash bench/engine.sh
# env:   BERTH_BIN   dir holding berthd, berth-shim, berth-runtime (default: the repo's
#                    target/release; built with cargo into it when a binary is missing)
#        RUNS=15     hyperfine runs per command (3 warmup runs before them)
#        CONTAINERS=50   containers kept running for 2, 4, 6
#        DOCKER_CLI=/usr/local/bin/docker   PODMAN=0 skips podman
#        WORK_PARENT=/var/tmp (where the work dir goes)  KEEP_LOGS=DIR copies daemon logs
# needs: root, the docker CLI; installs hyperfine, docker.io, busybox-static, podman with
# apt-get when missing. Leaves nothing behind: containers, daemons (stopped by pid),
# mounts and the work dir are removed on exit, also on failure or ^C.
# shellcheck disable=SC2046,SC2086 # pid and id lists and flag strings are split on purpose
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
repo=$PWD
runs=${RUNS:-15}
n=${CONTAINERS:-50}
bin=$(realpath -m "${BERTH_BIN:-$repo/target/release}")
DOCKER=${DOCKER_CLI:-/usr/local/bin/docker}
want_podman=${PODMAN:-1}
unset DOCKER_HOST DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH

W=""                    # work dir; everything the daemons store lives under it
berth_bridge=bbench$$   # berthd's default bridge (its nftables table: berth_<bridge>)
berthd_pid="" dockerd_pid="" containerd_pid="" load_start=""
engines=(berth docker)  # podman is added when it works
declare -A CLI RUNF     # per engine: client command line, extra `run` flags
declare -A R            # results: R[metric/engine]=number
problems=()             # what failed or looked wrong, printed at the end
new_host_paths=()       # state outside W that dockerd/podman create anyway: removed if new

log() { printf '\n== %s\n' "$*"; }
note() { printf '   %s\n' "$*"; }
problem() { problems+=("$*"); note "PROBLEM: $*"; }
ctl() { local e=$1; shift; ${CLI[$e]} "$@"; } # word splitting of CLI[e] is intended
now_ns() { date +%s%N; }

# --- setup --------------------------------------------------------------------------

install_deps() {
  [ -x "$DOCKER" ] || { echo "docker CLI not found at $DOCKER (set DOCKER_CLI)" >&2; exit 1; }
  local pkgs=()
  command -v hyperfine >/dev/null || pkgs+=(hyperfine)
  command -v dockerd >/dev/null || pkgs+=(docker.io)
  command -v python3 >/dev/null || pkgs+=(python3)
  dpkg -s busybox-static >/dev/null 2>&1 || pkgs+=(busybox-static)
  if [ ${#pkgs[@]} -gt 0 ]; then
    log "installing ${pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
  fi
  if [ "$want_podman" != 0 ] && ! command -v podman >/dev/null; then
    log "installing podman"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman >/dev/null ||
      note "podman could not be installed; it is left out"
  fi
}

build_berth() {
  local b missing=0
  for b in berthd berth-shim berth-runtime; do [ -x "$bin/$b" ] || missing=1; done
  [ $missing = 0 ] && return
  [ "$(basename "$bin")" = release ] || { echo "no Berth binaries in $bin" >&2; exit 1; }
  log "building Berth into $bin"
  CARGO_TARGET_DIR=$(dirname "$bin") cargo build --release --locked -q \
    -p berth-daemon -p berth-shim -p berth-runtime-cli
}

# Paths outside the work dir that dockerd and podman create whatever their flags say,
# and their parent cgroups (/docker, /libpod_parent) in every hierarchy.
remember_host_paths() {
  local p h
  for p in /run/docker /run/runc /run/containers /var/lib/containers \
    /etc/containers/networks /dev/shm/libpod_lock /run/netns; do
    [ -e "$p" ] || new_host_paths+=("$p")
  done
  for h in /sys/fs/cgroup /sys/fs/cgroup/*/; do
    [ -f "${h%/}/cgroup.procs" ] || continue
    for p in docker libpod_parent; do [ -e "${h%/}/$p" ] || new_host_paths+=("${h%/}/$p"); done
  done
}

make_image() {
  local r=$W/rootfs a
  mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/root"
  cp /bin/busybox "$r/bin/busybox"
  for a in $(/bin/busybox --list); do [ -e "$r/bin/$a" ] || ln -s busybox "$r/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"
  tar -C "$r" -cf "$W/busybox.tar" .
}

wait_for_api() { # ENGINE PID LOG
  local i
  for i in $(seq 300); do
    ctl "$1" version >/dev/null 2>&1 && return 0
    kill -0 "$2" 2>/dev/null || { echo "$1 daemon exited:" >&2; tail -20 "$3" >&2; exit 1; }
    sleep 0.1
  done
  echo "$1: API not up after 30 s" >&2; tail -20 "$3" >&2; exit 1
}

start_berthd() {
  local d=$W/berth
  mkdir -p "$d"
  CLI[berth]="$DOCKER -H unix://$d/berth.sock"
  RUNF[berth]="--network none"
  # The same daemon through Berth's own CLI: timed too, in its own rows.
  CLI[berth-cli]="$bin/berth -H unix://$d/berth.sock"
  RUNF[berth-cli]=""
  "$bin/berthd" -H "unix://$d/berth.sock" --data-root "$d/data" --exec-root "$d/exec" \
    --pidfile "$d/berthd.pid" --bridge "$berth_bridge" >"$d/berthd.log" 2>&1 &
  berthd_pid=$!
  wait_for_api berth "$berthd_pid" "$d/berthd.log"
}

start_dockerd() {
  local d=$W/docker
  mkdir -p "$d"
  echo '{}' >"$d/daemon.json" # not the host's /etc/docker/daemon.json
  CLI[docker]="$DOCKER -H unix://$d/docker.sock"
  RUNF[docker]="--network none"
  dockerd --config-file "$d/daemon.json" --data-root "$d/root" --exec-root "$d/exec" \
    -H "unix://$d/docker.sock" --pidfile "$d/dockerd.pid" --iptables=false --bridge=none \
    >"$d/dockerd.log" 2>&1 &
  dockerd_pid=$!
  wait_for_api docker "$dockerd_pid" "$d/dockerd.log"
  containerd_pid=$(cat "$d/exec/containerd/containerd.pid")
}

# podman keeps all its state under W (plus the host paths remembered above).
setup_podman() {
  [ "$want_podman" != 0 ] || { note "podman: skipped (PODMAN=0)"; return; }
  command -v podman >/dev/null || { note "podman: skipped (not installed)"; return; }
  local d=$W/podman out
  mkdir -p "$d/tmp" "$d/net"
  CLI[podman]="podman --root $d/root --runroot $d/run --tmpdir $d/tmp --network-config-dir $d/net"
  CLI[podman]+=" --cgroup-manager cgroupfs --events-backend file"
  RUNF[podman]="--network none --runtime runc --ulimit nofile=1024:1024 --ulimit nproc=4096:4096"
  if ! out=$(ctl podman import --change 'CMD ["sh"]' "$W/busybox.tar" busybox:latest 2>&1); then
    note "podman: skipped, import failed: $(tail -1 <<<"$out")"; return
  fi
  if ! out=$(ctl podman run --rm ${RUNF[podman]} busybox true 2>&1); then
    note "podman: skipped, run failed: $(tail -1 <<<"$out")"; return
  fi
  engines+=(podman)
}

# --- measuring ----------------------------------------------------------------------

# pids whose comm is $1 and whose command line contains $2
pids_of() {
  local f p c
  for f in /proc/[0-9]*/comm; do
    read -r c 2>/dev/null <"$f" || continue
    [ "$c" = "$1" ] || continue
    p=${f#/proc/}; p=${p%/comm}
    tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -qF -- "$2" && echo "$p"
  done
  return 0
}

shim_pids() {
  case $1 in
    berth) pids_of berth-shim "$W/berth/" ;;
    docker) pids_of containerd-shim "$W/docker/" ;; # containerd-shim-runc-v2, comm cut to 15
    podman) pids_of conmon "$W/podman/" ;;
  esac
}

daemon_pids() {
  case $1 in
    berth) echo "$berthd_pid" ;;
    docker) echo "$dockerd_pid $containerd_pid" ;;
    podman) ;; # no daemon
  esac
}

# "RSS PSS USS COUNT" summed over the pids, in KiB (USS: pages only that process maps)
mem_kib() {
  local r=0 s=0 u=0 c=0 p x y z
  for p in "$@"; do
    x=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null) || continue
    read -r y z < <(awk '/^Pss:/ {p = $2} /^Private_(Clean|Dirty):/ {u += $2} END {print p, u}' \
      "/proc/$p/smaps_rollup" 2>/dev/null) || continue
    [ -n "$x" ] && [ -n "$y" ] || continue
    r=$((r + x)); s=$((s + y)); u=$((u + z)); c=$((c + 1))
  done
  echo "$r $s $u $c"
}

mib() { awk -v k="$1" 'BEGIN { printf "%.2f", k / 1024 }'; }

# hyperfine over one command per engine (ARGS after the engine's client); an engine whose
# command fails once beforehand is left out with the error printed.
bench() { # KEY ARGS-TEMPLATE ; "{run}" in the template is replaced by the engine's run flags
  local key=$1 tmpl=$2 e args out cmds=()
  for e in "${engines[@]}" berth-cli; do
    args=${tmpl//\{run\}/${RUNF[$e]}}
    args=${args//\{ctr\}/$(head -1 "$W/ids-$e" 2>/dev/null || true)}
    if ! out=$(ctl "$e" $args 2>&1 >/dev/null); then
      problem "$e: '$args' failed, left out of $key: $(tail -1 <<<"$out")"; continue
    fi
    cmds+=(-n "$e" "${CLI[$e]} $args")
  done
  [ ${#cmds[@]} -gt 0 ] || return 0
  hyperfine -N -i --style basic --warmup 3 --runs "$runs" --export-json "$W/$key.json" "${cmds[@]}" ||
    { problem "hyperfine failed for $key"; return 0; }
  while read -r e ms fails; do
    R[$key/$e]=$ms
    [ "$fails" = 0 ] || problem "$e: $fails of $runs runs of '$key' exited non-zero"
  done < <(python3 -c '
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    print(r["command"], r["mean"] * 1000, sum(1 for c in r.get("exit_codes", []) if c != 0))
' "$W/$key.json")
}

measure_idle() {
  local e rss pss
  sleep 2
  for e in berth docker; do
    read -r rss pss _ _ < <(mem_kib $(daemon_pids $e))
    R[idle_rss/$e]=$(mib "$rss"); R[idle_pss/$e]=$(mib "$pss")
  done
  note "VmRSS: berthd $(awk '/VmRSS/{print $2, $3}' /proc/$berthd_pid/status);" \
    "dockerd $(awk '/VmRSS/{print $2, $3}' /proc/$dockerd_pid/status)," \
    "containerd $(awk '/VmRSS/{print $2, $3}' /proc/$containerd_pid/status)"
}

# N starts of `run -d ... sleep 1000` per engine, one engine after the other for each i.
start_containers() {
  local i e t0 t1 id
  declare -A failed
  for i in $(seq "$n"); do
    for e in "${engines[@]}"; do
      [ -z "${failed[$e]:-}" ] || continue
      t0=$(now_ns)
      if id=$(ctl "$e" run -d ${RUNF[$e]} busybox sleep 1000 2>"$W/err"); then
        t1=$(now_ns)
        echo $((t1 - t0)) >>"$W/start-$e"
        echo "$id" >>"$W/ids-$e"
      else
        failed[$e]=1
        problem "$e: run -d failed at container $i: $(tail -1 "$W/err")"
      fi
    done
  done
  for e in "${engines[@]}"; do
    [ -s "$W/start-$e" ] || continue
    R[run_d/$e]=$(awk '{ s += $1 } END { printf "%.1f", s / NR / 1e6 }' "$W/start-$e")
    note "$e: $(wc -l <"$W/start-$e") started, median $(sort -n "$W/start-$e" |
      awk '{ a[NR] = $1 } END { printf "%.1f", a[int((NR + 1) / 2)] / 1e6 }') ms"
  done
}

measure_running() {
  local e c drss dpss srss spss suss
  sleep 2 # let the shims settle
  for e in "${engines[@]}"; do
    [ -s "$W/ids-$e" ] || continue
    read -r drss dpss _ _ < <(mem_kib $(daemon_pids "$e"))
    read -r srss spss suss c < <(mem_kib $(shim_pids "$e"))
    note "$e: $(wc -l <"$W/ids-$e") containers, $c shim processes"
    [ "$c" = "$(wc -l <"$W/ids-$e")" ] || problem "$e: $c shims for $(wc -l <"$W/ids-$e") containers"
    if [ "$e" != podman ]; then R[n_daemon_rss/$e]=$(mib "$drss"); R[n_daemon_pss/$e]=$(mib "$dpss"); fi
    [ "$c" -gt 0 ] || continue
    R[shim_rss/$e]=$(mib "$srss"); R[shim_pss/$e]=$(mib "$spss")
    R[shim_rss_avg/$e]=$(mib $((srss / c))); R[shim_pss_avg/$e]=$(mib $((spss / c)))
    R[shim_uss_avg/$e]=$(mib $((suss / c)))
    R[total_rss/$e]=$(mib $((drss + srss))); R[total_pss/$e]=$(mib $((dpss + spss)))
  done
}

# every engine lists no container (after `run --rm`, after `rm -f`)
check_none_left() { # WHEN
  local e left
  for e in "${engines[@]}"; do
    left=$(ctl "$e" ps -a --no-trunc --format '{{.ID}} {{.Status}} {{.Command}}' 2>&1 | head -5 | paste -sd';')
    [ -z "$left" ] || problem "$e: containers still listed $1: $left"
  done
}

remove_containers() {
  local e t0 t1 left rmf id g
  for e in "${engines[@]}"; do
    [ -s "$W/ids-$e" ] || continue
    rmf="rm -f"; [ "$e" = podman ] && rmf="rm -f -t 0" # podman's rm -f stops with a 10 s grace
    t0=$(now_ns)
    ctl "$e" $rmf $(cat "$W/ids-$e") >/dev/null 2>"$W/err" ||
      problem "$e: rm -f failed: $(tail -1 "$W/err")"
    t1=$(now_ns)
    R[rm/$e]=$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.2f", d / 1e9 }')
  done
  sleep 1
  check_none_left "1 s after rm -f"
  for e in "${engines[@]}"; do
    left=$(shim_pids "$e" | wc -l)
    [ "$left" = 0 ] || problem "$e: $left shim processes still running 1 s after rm -f"
  done
  for id in $(cat "$W/ids-berth" 2>/dev/null); do
    for g in /sys/fs/cgroup/berth/"$id" /sys/fs/cgroup/*/berth/"$id"; do
      [ ! -d "$g" ] || { problem "berth: cgroup $g of a removed container left"; break; }
    done
  done
}

# --- report -------------------------------------------------------------------------

row() { # KEY LABEL FORMAT GOAL
  local key=$1 label=$2 f=$3 goal=$4 e v cells=() ratio="-" b d
  for e in berth docker podman; do
    v=${R[$key/$e]:-}
    if [ -n "$v" ]; then cells+=("$(printf "$f" "$v")"); else cells+=("-"); fi
  done
  b=${R[$key/berth]:-}; d=${R[$key/docker]:-}
  [ -n "$b" ] && [ -n "$d" ] &&
    ratio=$(awk -v b="$b" -v d="$d" 'BEGIN { if (d > 0) printf "%.3f", b / d; else print "-" }')
  printf '%-50s %9s %9s %9s %12s  %s\n' "$label" "${cells[@]}" "$ratio" "$goal"
}

# A berth-CLI time against docker's own (docker CLI + dockerd) in the ratio column.
cli_row() { # KEY LABEL GOAL
  local key=$1 label=$2 goal=$3 b d ratio="-"
  b=${R[$key/berth-cli]:-}; d=${R[$key/docker]:-}
  [ -n "$b" ] || return 0
  [ -n "$d" ] && ratio=$(awk -v b="$b" -v d="$d" 'BEGIN { if (d > 0) printf "%.3f", b / d; else print "-" }')
  printf '%-50s %9s %9s %9s %12s  %s\n' "$label" "$(printf %.1f "$b")" "-" "-" "$ratio" "$goal"
}

report() {
  log "results (times: mean; memory: MiB; same run for every engine)"
  printf '%-50s %9s %9s %9s %12s  %s\n' metric berth docker podman berth/docker goal
  row run_rm "run --rm busybox true (ms)" %.1f "berth/docker <= 0.10"
  cli_row run_rm "  same, berth CLI against berthd (ms)" "berth <= 0.10"
  row run_d "run -d busybox sleep 1000, per start (ms)" %.1f ""
  row exec "exec <running ctr> true (ms)" %.1f "berth/docker <= 0.20"
  cli_row exec "  same, berth CLI against berthd (ms)" "berth <= 0.20"
  row ps "ps, $n running (ms)" %.1f ""
  cli_row ps "  same, berth CLI against berthd (ms)" ""
  row idle_rss "idle daemon RSS (MiB; docker: dockerd+containerd)" %.2f "berth/docker <= 0.20"
  row idle_pss "idle daemon PSS (MiB)" %.2f ""
  row n_daemon_rss "daemon RSS, $n running (MiB)" %.2f ""
  row n_daemon_pss "daemon PSS, $n running (MiB)" %.2f ""
  row shim_rss "shims RSS total, $n running (MiB)" %.2f ""
  row shim_pss "shims PSS total, $n running (MiB)" %.2f ""
  row shim_rss_avg "RSS per shim (MiB)" %.2f "berth <= 1 MiB"
  row shim_pss_avg "PSS per shim (MiB)" %.2f ""
  row shim_uss_avg "USS per shim, private pages only (MiB)" %.2f ""
  row total_rss "daemon + shims RSS, $n running (MiB)" %.2f ""
  row total_pss "daemon + shims PSS, $n running (MiB)" %.2f ""
  row rm "rm -f of the $n running (s)" %.2f ""
  echo
  setup_notes
  [ "${#problems[@]}" = 0 ] || { echo; note "problems seen:"; printf '   - %s\n' "${problems[@]}"; }
  berth_log_summary
}

setup_notes() {
  local cli berthd dockerd tree cg
  cli=$(ctl berth version --format '{{.Client.Version}}' 2>/dev/null || true)
  berthd=$(ctl berth version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null || true)
  dockerd=$(ctl docker version --format '{{.Server.Version}}' 2>/dev/null || true)
  tree=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || true)
  git -C "$repo" diff --quiet HEAD 2>/dev/null || tree+=" + uncommitted changes"
  cg=v1/hybrid; [ -f /sys/fs/cgroup/cgroup.controllers ] && cg=v2
  note "client: docker CLI $cli for berthd and dockerd (the same client); the \"berth CLI\" rows time Berth's own CLI against the same berthd; podman's own CLI"
  note "berthd $berthd from $bin, built $(date -r "$bin/berthd" '+%F %T') (repo now at $tree)"
  note "dockerd $dockerd, $(containerd --version 2>/dev/null | awk '{print $1, $3}'), $(runc --version 2>/dev/null | head -1)"
  command -v podman >/dev/null && note "$(podman --version) (runc; shims = conmon; no daemon)"
  note "all containers --network none (network setup is bench/network.sh's); dockerd --bridge=none --iptables=false"
  note "load average at start $load_start, at the end $(cut -d' ' -f1-3 /proc/loadavg) (other work adds noise)"
  note "$(nproc) cpus, kernel $(uname -r), cgroup $cg, $runs hyperfine runs + 3 warmup, $n containers"
}

berth_log_summary() {
  local f=$W/berth/berthd.log c
  [ -f "$f" ] || return 0
  c=$(grep -ciE 'error|warn|panic' "$f" || true)
  echo
  note "berthd log: $(wc -l <"$f") lines, $c with error/warn/panic"
  [ "$c" = 0 ] || grep -iE 'error|warn|panic' "$f" | sed 's/\x1b\[[0-9;]*m//g; s/^[0-9TZ:.-]* *//' |
    sort | uniq -c | sort -rn | head -15 | cut -c1-200 | sed 's/^/     /'
}

# --- cleanup ------------------------------------------------------------------------

alive_with() { [ -n "$1" ] && tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -qF -- "$2"; }

stop_pid() { # PID PATTERN: TERM, up to 15 s, then KILL, only if its command line has PATTERN
  local i
  alive_with "$1" "$2" || return 0
  kill -TERM "$1" 2>/dev/null || return 0
  for i in $(seq 150); do alive_with "$1" "$2" || return 0; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
}

# processes left in the containers' cgroups (by the ids this run created), then the cgroups
reap_cgroups() { # PARENT IDFILE
  local id g p
  for id in $(cat "$2" 2>/dev/null); do
    for g in /sys/fs/cgroup/"$1"/"$id"* /sys/fs/cgroup/*/"$1"/"$id"*; do
      [ -d "$g" ] || continue
      for p in $(cat "$g/cgroup.procs" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done
      sleep 0.2; rmdir "$g" 2>/dev/null || true
    done
  done
}

cleanup() {
  local rc=$? e p m
  trap - EXIT INT TERM
  set +e
  [ -n "$W" ] && [ -d "$W" ] || exit $rc
  log "cleaning up"
  [ -n "${KEEP_LOGS:-}" ] && mkdir -p "$KEEP_LOGS" &&
    cp "$W/berth/berthd.log" "$W/docker/dockerd.log" "$KEEP_LOGS/" 2>/dev/null
  for e in "${engines[@]}"; do
    [ -n "${CLI[$e]:-}" ] || continue
    ctl "$e" ps -aq 2>/dev/null >>"$W/ids-$e"
    case $e in
      podman) ctl podman rm -af -t 0 >/dev/null 2>&1 ;;
      *) ids=$(ctl "$e" ps -aq 2>/dev/null); [ -z "$ids" ] || ctl "$e" rm -f $ids >/dev/null 2>&1 ;;
    esac
  done
  stop_pid "$berthd_pid" "$W/"
  stop_pid "$dockerd_pid" "$W/"
  stop_pid "$containerd_pid" "$W/"
  for e in berth docker podman; do
    for p in $(shim_pids $e); do kill -KILL "$p" 2>/dev/null; done
  done
  reap_cgroups berth "$W/ids-berth"
  reap_cgroups docker "$W/ids-docker"
  # mounts under W, deepest first
  for m in $(awk -v w="$W/" 'index($5, w) == 1 { print length($5), $5 }' /proc/self/mountinfo | sort -rn | cut -d' ' -f2); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || note "could not unmount $m"
  done
  rm -rf "$W"
  ip link del "$berth_bridge" 2>/dev/null
  nft delete table ip "berth_$berth_bridge" 2>/dev/null
  for p in "${new_host_paths[@]}"; do
    case $p in
      /run/docker | /run/runc) [ -d "$p" ] && find "$p" -depth -type d -empty -delete ;; # shared names: only if empty
      /run/netns) umount "$p" 2>/dev/null; rmdir "$p" 2>/dev/null ;; # podman's, a shared bind mount of itself
      /sys/fs/cgroup/*) [ -d "$p" ] && find "$p" -depth -type d -exec rmdir {} + 2>/dev/null ;; # empty cgroups only
      *) rm -rf "$p" ;;                                                                  # podman's own
    esac
  done
  # nothing of the reference engines may stay on the host network
  ip link show docker0 >/dev/null 2>&1 && note "WARNING: a docker0 bridge exists"
  iptables -S 2>/dev/null | grep -q DOCKER && note "WARNING: DOCKER chains in iptables (filter)"
  iptables -t nat -S 2>/dev/null | grep -q DOCKER && note "WARNING: DOCKER chains in iptables (nat)"
  grep -qF "$W" /proc/self/mountinfo && note "WARNING: mounts under $W remain"
  exit $rc
}

# --- main ---------------------------------------------------------------------------

main() {
  install_deps
  build_berth
  W=$(mktemp -d "${WORK_PARENT:-/var/tmp}/berth-engine-bench.XXXXXX")
  trap cleanup EXIT
  trap 'exit 130' INT TERM
  remember_host_paths
  load_start=$(cut -d' ' -f1-3 /proc/loadavg)
  log "work dir $W; Berth binaries from $bin"
  make_image
  start_berthd
  start_dockerd
  for e in berth docker; do
    ctl "$e" import --change 'CMD ["sh"]' "$W/busybox.tar" busybox:latest >/dev/null
  done
  setup_podman
  note "engines: ${engines[*]}"

  log "5. idle daemon memory"
  measure_idle
  log "1. run --rm busybox true"
  bench run_rm "run --rm {run} busybox true"
  sleep 1
  check_none_left "1 s after the run --rm runs"
  log "2. run -d busybox sleep 1000, $n per engine, interleaved"
  start_containers
  log "6. memory with $n containers running"
  measure_running
  cp "$W/ids-berth" "$W/ids-berth-cli"
  log "3. exec <running container> true"
  bench exec "exec {ctr} true"
  log "4. ps with $n running"
  bench ps "ps"
  log "removing the containers"
  remove_containers
  report
}

main "$@"
