#!/bin/sh
# etcd member etcd-1 (boot1): its settings are in etcd-1.env.
exec "$(dirname "$0")/etcd-member.sh" etcd-1.env
