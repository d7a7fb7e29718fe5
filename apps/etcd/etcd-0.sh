#!/bin/sh
# etcd member etcd-0 (boot0): its settings are in etcd-0.env.
exec "$(dirname "$0")/etcd-member.sh" etcd-0.env
