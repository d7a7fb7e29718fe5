#!/usr/bin/env bash
# The full fault suite (RELIABILITY.md): real fild, etcd members and gateway on 127.0.0.1
# (and, for the partition case, network namespaces it creates and deletes), one case at a
# time. Needs root (tmpfs mount, network namespaces). Takes about 10 minutes.
#   scripts/fault-suite.sh                 # all seven cases
#   scripts/fault-suite.sh fault5          # the cases whose test name contains "fault5"
#   FAULT_SEED=123 scripts/fault-suite.sh  # repeat a run's random choices
# Each case prints a FAULT-REPORT line; all of them are gathered in $CARGO_TARGET_DIR (or
# target)/fault-report.jsonl.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[ "$(id -u)" = 0 ] || { echo "fault-suite: needs root (tmpfs mount, network namespaces)" >&2; exit 1; }
target="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target"
report="$(cd "$target" && pwd)/fault-report.jsonl"
: >"$report"
export FAULT_REPORT="$report"
bash scripts/setup.sh >/dev/null
cargo test --release --test fault_full -- --ignored --nocapture --test-threads=1 "$@"
echo "fault-suite: figures in $report"
cat "$report"
