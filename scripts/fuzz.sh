#!/usr/bin/env bash
# Fuzz the config parser/expander, the config-to-state-machine path (reload diff and
# state::step on a simulated clock), the env-file reader, the request decoder and the PEM
# readers of the TLS files, each for a bounded time (default 60 s per target; outside CI's
# budget). Uses cargo-fuzz on the stable toolchain (RUSTC_BOOTSTRAP=1). The committed seeds are fuzz/corpus/<target>/; new inputs
# go to fuzz/work/<target>/ (not committed); crashes to fuzz/artifacts/<target>/ and make the
# script fail (add the input to the seeds once fixed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../fuzz"
secs=${1:-60}
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for target in config_load config_step envfile request_decode pem; do
    echo "fuzz: $target for ${secs}s"
    mkdir -p "work/$target"
    # The config targets start from the keys and numbers that matter (fuzz/dict/config.dict):
    # with it, config_step finds an unbounded startsecs in under three minutes.
    dict=()
    case $target in config_*) dict=(-dict=dict/config.dict) ;; esac
    cargo fuzz run "$target" "work/$target" "corpus/$target" -- -max_total_time="$secs" -rss_limit_mb=2048 "${dict[@]}"
done
