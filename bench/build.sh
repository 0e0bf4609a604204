#!/bin/bash
# Build benchmark (issue 8): a cold build (--no-cache) and a fully cached rebuild of the
# same Dockerfile (FROM busybox, five RUNs, a COPY of 10 MB, ENV/WORKDIR/CMD), berthd
# against dockerd's classic builder, side by side in one run, both driven by the same
# docker CLI. Prints the median of each and the berth/docker ratio.
#
# Goals: cached rebuild <= 1/3 of docker's time; cold build no slower (<= 1.0).
#
# Usage: sudo bash bench/build.sh        (RUNS=5 for more rounds; BIN=dir of binaries)
#
# Everything both daemons store lives under one temporary directory, removed at the end
# with the processes this script started (by pid). Engines alternate order each round.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-3}
bench_start build

mkdir -p "$W/ctx"
head -c $((5 << 20)) /dev/urandom >"$W/ctx/random.bin"
head -c $((4 << 20)) /dev/urandom | base64 >"$W/ctx/text.b64"
cat >"$W/ctx/Dockerfile" <<'EOF'
FROM busybox
ENV APP=/app LEVEL=3
WORKDIR /app
RUN mkdir -p /app/data && echo one > /app/data/1
RUN for i in 1 2 3 4 5 6 7 8 9 10; do echo $i >> /app/data/count; done
COPY . /app/src/
RUN ls -l /app/src > /app/listing
RUN dd if=/dev/zero of=/app/data/zeros bs=1k count=512 2>/dev/null
RUN cat /app/data/count | wc -l > /app/data/lines
CMD ["cat", "/app/data/lines"]
EOF

for n in $(seq "$RUNS"); do
  log "round $n"
  if [ $((n % 2)) = 0 ]; then order="berth docker"; else order="docker berth"; fi
  for e in $order; do
    timed cold "$e" ctl "$e" build --no-cache -t bench:latest "$W/ctx"
    timed cached "$e" ctl "$e" build -t bench:latest "$W/ctx"
    [ "$(ctl "$e" run --rm --network none bench:latest)" = 10 ] || { echo "$e: wrong image" >&2; exit 1; }
  done
done

printf '\n%-16s %10s %10s %8s   %s\n' build "berth ms" "docker ms" ratio goal
for op in cold cached; do
  b=$(median "${T[$op/berth]}")
  d=$(median "${T[$op/docker]}")
  goal="<= 1.0"
  [ "$op" = cached ] && goal="<= 0.333"
  printf '%-16s %10s %10s %8s   %s\n' "$op" "$b" "$d" "$(ratio "$b" "$d")" "$goal"
done
every_time
