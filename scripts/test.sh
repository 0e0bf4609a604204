#!/bin/bash
# Runs Berth's test suite (as root: the tests run real containers).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root: the tests create namespaces, mounts and cgroups" >&2; exit 1; }
scripts/deps.sh
cargo test --workspace --locked "$@"
