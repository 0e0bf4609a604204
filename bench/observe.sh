#!/bin/bash
# Observation benchmark (issue 9): `stats --no-stream` and `ps` with N containers running
# (default 50, each `sleep`), berthd against dockerd, side by side in one run, both driven
# by the same docker CLI; Berth's own CLI has a row of its own. Prints medians in ms and
# the berth/docker ratio. Goal: `stats --no-stream` <= 1/10 of docker's time.
#
# Usage: sudo bash bench/observe.sh     (RUNS=7 rounds, CONTAINERS=50; BIN=dir of binaries)
#
# dockerd's one-shot stats waits for two samples of each container; berthd samples running
# containers once a second anyway (its stats history) and answers from the last sample.
# Everything lives under one temporary directory, removed at the end with the daemons
# (stopped by pid) and their containers.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-7}
N=${CONTAINERS:-50}
bench_start observe

log "starting $N containers on each engine"
for e in berth docker; do
  for i in $(seq "$N"); do ctl "$e" run -d --network none busybox sleep 100000 >/dev/null; done
  [ "$(ctl "$e" ps -q | wc -l)" = "$N" ] || { echo "$e: not all $N containers run" >&2; exit 1; }
done
sleep 3 # let both engines settle (and berthd's sampler take its first looks)

for n in $(seq "$RUNS"); do
  log "round $n"
  if [ $((n % 2)) = 0 ]; then order="berth docker"; else order="docker berth"; fi
  for e in $order; do
    timed stats "$e" ctl "$e" stats --no-stream
    timed ps "$e" ctl "$e" ps
  done
  timed stats berth-cli berth_cli stats --no-stream
  timed ps berth-cli berth_cli ps
done
rows=$(ctl berth stats --no-stream --format '{{.Name}}' | wc -l)
[ "$rows" = "$N" ] || echo "PROBLEM: berthd's stats listed $rows of $N containers"

printf '\n%-36s %10s %10s %8s   %s\n' "with $N running" "berth ms" "docker ms" ratio goal
for op in stats ps; do
  d=$(median "${T[$op/docker]}")
  b=$(median "${T[$op/berth]}")
  c=$(median "${T[$op/berth-cli]}")
  goal=""
  [ "$op" = stats ] && goal="<= 0.10"
  printf '%-36s %10s %10s %8s   %s\n' "$op (docker CLI for both)" "$b" "$d" "$(ratio "$b" "$d")" "$goal"
  printf '%-36s %10s %10s %8s   %s\n' "$op (berth CLI against berthd)" "$c" "$d" "$(ratio "$c" "$d")" "$goal"
done
every_time
