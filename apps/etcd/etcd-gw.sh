#!/bin/sh
# Launch the etcd gateway (a TCP proxy over the members' client URLs), settings in
# etcd-gw.env. Execs etcd, so fild supervises the gateway itself.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/etcd-gw.env"
etcd_bin=${ETCD_BIN:-$(command -v etcd || true)}
[ -x "$etcd_bin" ] || { echo "etcd-gw.sh: no etcd binary (install etcd-server or set ETCD_BIN)" >&2; exit 78; }
for v in $(env | sed -n 's/^\(ETCD_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
exec "$etcd_bin" gateway start \
    --listen-addr "$listen_addr" \
    --endpoints "$endpoints" \
    --retry-delay "$retry_delay"
