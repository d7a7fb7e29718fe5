#!/usr/bin/env bash
# Run the whole test suite: installs what is missing (scripts/setup.sh --tests: the build's and
# the tests' own needs), then cargo test.
# Integration tests start the real fild/filc and real etcd members on 127.0.0.1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh --tests
cargo test --all-targets "$@"
