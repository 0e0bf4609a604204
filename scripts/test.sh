#!/bin/bash
# Runs Berth's test suite (as root: the tests run real containers).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root: the tests create namespaces, mounts and cgroups" >&2; exit 1; }
scripts/deps.sh
# berthd's tests start berth-shim from beside berthd; cargo test alone builds the binaries
# of packages with integration tests only.
cargo build --workspace --bins --locked
cargo test --workspace --locked "$@"
