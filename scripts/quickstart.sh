#!/usr/bin/env bash
# Quick start: everything for the single-host three-member etcd cluster plus gateway under
# fild, on a fresh Debian machine. Installs what is missing, builds, starts fild in the
# background, activates the members and the gateway, starts them, waits until the cluster is
# healthy, prints `filc status` and the members' health. Running it again is harmless.
set -euo pipefail
PRJ_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$PRJ_ROOT"

bash scripts/setup.sh
echo "quickstart: building fild and filc (release)"
cargo build --release --quiet --bins
mkdir -p bin var/log var/fild
install -m 0755 target/release/fild target/release/filc bin/

# shellcheck source=../env.sh
. "$PRJ_ROOT/env.sh"

if filc version >/dev/null 2>&1; then
    echo "quickstart: fild is already running (pid $(filc pid))"
else
    echo "quickstart: starting fild in the background (log: var/log/fild.log)"
    setsid nohup fild -c "$FILD_CONFIG" </dev/null >>var/log/fild.out 2>&1 &
    for _ in $(seq 1 100); do
        filc version >/dev/null 2>&1 && break
        sleep 0.1
    done
    filc version >/dev/null || { echo "quickstart: fild did not come up; see var/log/fild.out" >&2; exit 1; }
fi

changed=0
for t in etcd-0 etcd-1 etcd-2 etcd-gw; do
    if ! cmp -s "tpl/$t.ini" "etc/fild/apps/$t.ini"; then
        cp "tpl/$t.ini" "etc/fild/apps/$t.ini"
        changed=1
    fi
done
if [ $changed = 1 ]; then
    filc reload
fi

echo "quickstart: starting the members (all three at once) and the gateway"
filc start 'etcd:*' || true
filc start etcd-gw || true

# Healthy as fild sees it: its own members and gateway RUNNING (exit 3 otherwise, so another
# etcd already holding these ports does not pass for ours), and the cluster healthy.
printf 'quickstart: waiting for a healthy cluster'
healthy=0
for _ in $(seq 1 120); do
    if filc status etcd-0 etcd-1 etcd-2 etcd-gw >/dev/null 2>&1 && filc etcd status >/dev/null 2>&1; then
        healthy=1
        break
    fi
    printf '.'
    sleep 0.5
done
echo
filc status
filc etcd status || true
if [ $healthy = 1 ]; then
    echo "quickstart: the cluster is healthy; clients use the gateway at ${ETCD_GW_ADDR:-127.0.0.1:2379}."
    echo "quickstart: next: . ./env.sh; filc status; apps/etcd/etcdctl.sh member list"
else
    echo "quickstart: the cluster is not healthy after 60 s; see var/log/etcd-*.stderr.log" >&2
    exit 1
fi
