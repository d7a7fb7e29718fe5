#!/bin/sh
# Launch one etcd member from its env file: ./etcd-member.sh etcd-0.env
#
# Reads the member's name, URLs, data dir and cluster settings from the env file, raises the
# open-files limit, creates the data dir (0700) and then *execs* etcd: the supervised pid is
# etcd itself, so nothing can be orphaned holding the member's ports.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
envfile=$1
case "$envfile" in /*) ;; *) envfile="$here/$envfile" ;; esac
[ -r "$envfile" ] || { echo "etcd-member.sh: cannot read $envfile" >&2; exit 78; }

: "${PRJ_ROOT:=$(cd "$here/../.." && pwd)}"
: "${ETCD_DATA_ROOT:=$PRJ_ROOT/var/etcd}"
# shellcheck source=/dev/null
. "$envfile"

etcd_bin=${ETCD_BIN:-$(command -v etcd || true)}
[ -x "$etcd_bin" ] || { echo "etcd-member.sh: no etcd binary (install etcd-server or set ETCD_BIN)" >&2; exit 78; }

# etcd wants many open files; take what the hard limit allows, and say so when it is short.
want=${ETCD_NOFILE:-65536}
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -ge "$want" ]; then
    ulimit -Sn "$want"
else
    ulimit -Sn "$hard"
    echo "etcd-member.sh: warning: open-files hard limit is $hard, below the wanted $want" >&2
fi

# etcd binds IP addresses only: a host name in a listen URL (boot0.etcd.local, as in the
# seeds' /etc/hosts setup) is resolved here; it is still what peers and clients are told.
bind_url() {
    scheme=${1%%://*}; rest=${1#*://}; host=${rest%:*}; port=${rest##*:}
    case "$host" in
        *[!0-9.]*)
            ip=$(getent ahostsv4 "$host" 2>/dev/null | awk 'NR==1 {print $1}')
            [ -n "$ip" ] || { echo "etcd-member.sh: cannot resolve $host" >&2; exit 78; }
            host=$ip ;;
    esac
    echo "$scheme://$host:$port"
}
listen_peer_urls=$(bind_url "$listen_peer_urls")
listen_client_urls=$(bind_url "$listen_client_urls")

# Off loopback (mode two), also serve clients on 127.0.0.1 for the local gateway and tools.
case "$listen_client_urls" in
    *://127.0.0.1:*) ;;
    *) listen_client_urls="$listen_client_urls,${client_url%%://*}://127.0.0.1:${client_url##*:}" ;;
esac

# TLS (tls= in the env file: off, files or auto). The flags go into "$@", so file names may
# hold spaces. A setting that contradicts the URLs' schemes stops here, before etcd starts.
die() { echo "etcd-member.sh: $envfile: $*" >&2; exit 78; }
is_https() { case "$1" in https://*) return 0 ;; *) return 1 ;; esac; }
need_file() { # need_file KEY VALUE
    [ -n "$2" ] || die "tls=$tls needs $1"
    [ -r "$2" ] || die "$1: cannot read $2"
}
tls=${tls:-off}
set --
case "$tls" in
    off)
        if is_https "$client_url" || is_https "$peer_url"; then
            die "tls=off, but client_url $client_url / peer_url $peer_url use https (set ETCD_TLS=files, or ETCD_SCHEME=http)"
        fi ;;
    files|auto)
        if is_https "$client_url"; then
            need_file cert_file "${cert_file:-}"
            need_file key_file "${key_file:-}"
            set -- "$@" --cert-file "$cert_file" --key-file "$key_file"
            if [ -n "${trusted_ca_file:-}" ]; then
                need_file trusted_ca_file "$trusted_ca_file"
                set -- "$@" --trusted-ca-file "$trusted_ca_file" --client-cert-auth
            fi
        elif [ "$tls" = files ]; then
            die "tls=files serves clients over https, but client_url is $client_url (set ETCD_SCHEME=https)"
        fi
        is_https "$peer_url" ||
            die "tls=$tls encrypts peer traffic, but peer_url is $peer_url (set ETCD_SCHEME=https or ETCD_PEER_SCHEME=https)"
        if [ "$tls" = files ]; then
            need_file peer_cert_file "${peer_cert_file:-}"
            need_file peer_key_file "${peer_key_file:-}"
            set -- "$@" --peer-cert-file "$peer_cert_file" --peer-key-file "$peer_key_file"
            if [ -n "${peer_trusted_ca_file:-}" ]; then
                need_file peer_trusted_ca_file "$peer_trusted_ca_file"
                set -- "$@" --peer-trusted-ca-file "$peer_trusted_ca_file" --peer-client-cert-auth
            fi
        else
            # Self-signed certificates under <data_dir>/fixtures/peer: encrypted, not
            # authenticated (peers do not verify each other).
            set -- "$@" --peer-auto-tls
        fi ;;
    *) die "tls=$tls: expected off, files or auto" ;;
esac

# Data dirs are private: the root is created 0700 when missing, each member's dir is 0700.
root=$(dirname "$data_dir")
[ -d "$root" ] || mkdir -p -m 0700 "$root"
mkdir -p "$data_dir"
chmod 0700 "$data_dir"

# Everything is read; now drop every exported ETCD_* variable: etcd treats them as flags
# and refuses a setting given both ways.
retention=${ETCD_COMPACTION_RETENTION:-1h}
quota=${ETCD_QUOTA_BACKEND_BYTES:-8589934592}
heartbeat=${ETCD_HEARTBEAT_MS:-100}
election=${ETCD_ELECTION_MS:-1000}
# extra_flags= in the env file: set for one start by `filc etcd rescue` (--force-new-cluster).
extra="${ETCD_EXTRA_FLAGS:-} ${extra_flags:-}"
for v in $(env | sed -n 's/^\(ETCD_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done

# shellcheck disable=SC2086 # $extra is a list of flags
exec "$etcd_bin" \
    --name "$name" \
    --data-dir "$data_dir" \
    --listen-peer-urls "$listen_peer_urls" \
    --initial-advertise-peer-urls "$peer_url" \
    --listen-client-urls "$listen_client_urls" \
    --advertise-client-urls "$client_url" \
    --initial-cluster "$initial_cluster" \
    --initial-cluster-token "$cluster_token" \
    --initial-cluster-state "$cluster_state" \
    --auto-compaction-mode periodic \
    --auto-compaction-retention "$retention" \
    --quota-backend-bytes "$quota" \
    --heartbeat-interval "$heartbeat" \
    --election-timeout "$election" \
    --logger zap \
    "$@" \
    $extra
