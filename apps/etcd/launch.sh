#!/bin/sh
# Launch the etcd member or gateway whose settings file the program names: FILD_ETCD_MEMBER
# or FILD_ETCD_GATEWAY in its environment= (tpl/*.ini), or $1.
#
# Everything about the launch (the settings and their runtime layer, the open-files limit,
# the data dir, the argv) is fild's one evaluator, `fild --exec-etcd FILE`, the same code fild
# uses to know its members. It execs etcd: the supervised pid is etcd itself.
here=$(cd "$(dirname "$0")" && pwd)
file=${1:-${FILD_ETCD_MEMBER:-${FILD_ETCD_GATEWAY:-}}}
[ -n "$file" ] || { echo "launch.sh: no settings file: set FILD_ETCD_MEMBER in the program's environment (see tpl/etcd-0.ini)" >&2; exit 78; }
case "$file" in /*) ;; *) file="$here/$file" ;; esac
# The fild that supervises this program (FILD_BIN: its running image, /proc/<pid>/exe), else
# the kit's bin/fild, else the one on PATH.
for fild in "${FILD_BIN:-}" "${PRJ_ROOT:-$here/../..}/bin/fild" "$(command -v fild 2>/dev/null)"; do
    if [ -n "$fild" ] && [ -x "$fild" ]; then exec "$fild" --exec-etcd "$file"; fi
done
echo "launch.sh: no fild binary (FILD_BIN, \$PRJ_ROOT/bin/fild, PATH): run scripts/quickstart.sh" >&2
exit 78
