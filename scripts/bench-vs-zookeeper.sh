#!/usr/bin/env bash
# Builds ferrokeeper, then races it against ZooKeeper 3.8 (Debian's
# `zookeeper` package) with `ferrokeeper bench`; writes docs/BENCHMARKS.md.
#   scripts/bench-vs-zookeeper.sh [SECONDS] [WORKLOAD ...]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f /usr/share/java/zookeeper.jar ] || { echo "needs Debian's zookeeper package (apt-get install zookeeper)" >&2; exit 1; }
cargo build --release --locked
exec /usr/bin/python3 scripts/bench_vs_zookeeper.py "$@"
