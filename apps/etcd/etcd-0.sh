#!/bin/sh
# Kept for program files copied from an older tpl/etcd-0.ini (command=./etcd-0.sh): launches
# etcd-0.env. fild knows a program as an etcd member only when its environment= names the
# file, as the current template does: copy tpl/etcd-0.ini to etc/fild/apps/ again.
exec "$(dirname "$0")/launch.sh" "$(dirname "$0")/etcd-0.env"
