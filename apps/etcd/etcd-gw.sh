#!/bin/sh
# Kept for program files copied from an older tpl/etcd-gw.ini (command=./etcd-gw.sh): launches
# etcd-gw.env. fild knows a program as an etcd member only when its environment= names the
# file, as the current template does: copy tpl/etcd-gw.ini to etc/fild/apps/ again.
exec "$(dirname "$0")/launch.sh" "$(dirname "$0")/etcd-gw.env"
