#!/usr/bin/env bash
# Install what fild's build, cluster and tests need on Debian, skipping what is present:
# etcd (server + etcdctl), protoc (for the etcd client crate), iproute2 (test namespaces),
# python3 (test helpers). Safe to run again.
set -euo pipefail
need=()
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    export DEBIAN_FRONTEND=noninteractive
    $sudo apt-get update -qq
    # etcd-server's maintainer scripts try to start a system etcd; we never use it.
    $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo is missing: install Rust (rustup) first" >&2
    exit 1
fi
# A system etcd the package may have started would hold 2379/2380; stop it if it runs.
if [ -d /run/systemd/system ] && systemctl is-active --quiet etcd 2>/dev/null; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo systemctl disable --now etcd >/dev/null 2>&1 || true
fi
echo "setup: etcd $(etcd --version 2>/dev/null | sed -n 's/^etcd Version: //p'), $(cargo --version)"
