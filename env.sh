# Source me from any folder:  . /path/to/fild/env.sh
# Sets PRJ_ROOT from this file's location, puts fild/filc and the etcd scripts on PATH, and
# exports what fild, filc and the etcd launch scripts read.
if [ -n "${BASH_SOURCE:-}" ]; then
    _fild_env=${BASH_SOURCE[0]}
elif [ -n "${ZSH_VERSION:-}" ]; then
    # shellcheck disable=SC2296
    _fild_env=${(%):-%x}
else
    _fild_env=./env.sh
fi
PRJ_ROOT=$(cd "$(dirname "$_fild_env")" && pwd)
unset _fild_env
export PRJ_ROOT
case ":$PATH:" in
    *":$PRJ_ROOT/bin:"*) ;;
    *) export PATH="$PRJ_ROOT/bin:$PRJ_ROOT/target/release:$PRJ_ROOT/apps/etcd:$PATH" ;;
esac
export FILD_CONFIG="$PRJ_ROOT/etc/fild/fild.ini"
export ETCD_DATA_ROOT="${ETCD_DATA_ROOT:-$PRJ_ROOT/var/etcd}"
export ETCDCTL_API=3
