#!/bin/sh
# etcd member etcd-2 (boot2): its settings are in etcd-2.env.
exec "$(dirname "$0")/etcd-member.sh" etcd-2.env
