#!/bin/sh
# Kept for program files copied from an older tpl/etcd-1.ini (command=./etcd-1.sh): launches
# etcd-1.env. fild knows a program as an etcd member only when its environment= names the
# file, as the current template does: copy tpl/etcd-1.ini to etc/fild/apps/ again.
exec "$(dirname "$0")/launch.sh" "$(dirname "$0")/etcd-1.env"
