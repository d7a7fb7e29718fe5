#!/bin/sh
# etcdctl (v3 API) against the local gateway, as the runbooks use it:
#   ./etcdctl.sh member list
#   ./etcdctl.sh endpoint status --cluster      (--cluster asks every member directly)
#   ./etcdctl.sh --endpoints=127.0.0.1:2179 get foo
# With TLS (etcd-gw.env: scheme, cacert, cert, key) it talks https and presents the client
# certificate; ETCDCTL_CACERT, ETCDCTL_CERT and ETCDCTL_KEY override the files.
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=/dev/null
. "$here/etcd-gw.env"
export ETCDCTL_API=3
etcdctl_bin=${ETCDCTL_BIN:-$(command -v etcdctl || true)}
[ -x "$etcdctl_bin" ] || { echo "etcdctl.sh: no etcdctl (install etcd-client or set ETCDCTL_BIN)" >&2; exit 78; }
[ -n "${cacert:-}" ] && export ETCDCTL_CACERT="$cacert"
[ -n "${cert:-}" ] && export ETCDCTL_CERT="$cert"
[ -n "${key:-}" ] && export ETCDCTL_KEY="$key"
for v in $(env | sed -n 's/^\(ETCD_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
case " $* " in
    *" --endpoints"*) exec "$etcdctl_bin" "$@" ;;
esac
exec "$etcdctl_bin" --endpoints="${ETCDCTL_ENDPOINTS:-${scheme:-http}://$listen_addr}" "$@"
