#!/usr/bin/env bash
# fild vs supervisord benchmark: install the peers if missing, build, run bench/bench.py.
#
#   bench/run.sh [--smoke] [--rounds N] [--out FILE] [other bench.py flags, see --help]
#
# Peers: etcd (scripts/setup.sh), runit's runsv and hyperfine (apt-get), supervisord (PyPI
# package `supervisor` in the git-ignored venv bench/.venv). Binaries: `cargo build --release
# --bins` here and target/release/{fild,filc}, unless FILD_BIN_DIR points elsewhere (then
# nothing is built). SUPERVISOR_BIN_DIR and ETCD_BIN override the other tools' places.
set -euo pipefail
PRJ_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$PRJ_ROOT"

say() { echo "bench/run.sh: $*" >&2; }

sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo

# etcd (and the rest of the project's own needs).
if ! command -v etcd >/dev/null 2>&1 && [ -z "${ETCD_BIN:-}" ]; then
    say "installing etcd (scripts/setup.sh)"
    bash scripts/setup.sh
fi

# runit (runsv) and hyperfine from Debian.
need=()
command -v runsv >/dev/null 2>&1 || need+=(runit)
command -v hyperfine >/dev/null 2>&1 || need+=(hyperfine)
command -v perl >/dev/null 2>&1 || need+=(perl)
command -v python3 >/dev/null 2>&1 || need+=(python3 python3-venv)
if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    # runit's maintainer scripts may try to start runsvdir as a service; we only use runsv.
    $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# supervisord from PyPI, in a venv under bench/ (git-ignored).
sup_dir=${SUPERVISOR_BIN_DIR:-$PRJ_ROOT/bench/.venv/bin}
if [ ! -x "$sup_dir/supervisord" ] || [ ! -x "$sup_dir/supervisorctl" ]; then
    if [ -n "${SUPERVISOR_BIN_DIR:-}" ]; then
        say "SUPERVISOR_BIN_DIR=$SUPERVISOR_BIN_DIR has no supervisord/supervisorctl"
        exit 1
    fi
    say "installing supervisor into bench/.venv (pip)"
    if ! python3 -m venv "$PRJ_ROOT/bench/.venv" 2>/dev/null; then
        rm -rf "$PRJ_ROOT/bench/.venv"
        export DEBIAN_FRONTEND=noninteractive
        $sudo apt-get update -qq
        $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
        python3 -m venv "$PRJ_ROOT/bench/.venv"
    fi
    "$PRJ_ROOT/bench/.venv/bin/pip" install --quiet --disable-pip-version-check supervisor
fi

# fild and filc.
if [ -n "${FILD_BIN_DIR:-}" ]; then
    say "using fild and filc from FILD_BIN_DIR=$FILD_BIN_DIR (not building)"
else
    say "building fild and filc (cargo build --release --bins)"
    cargo build --release --quiet --bins
fi

exec python3 "$PRJ_ROOT/bench/bench.py" "$@"
