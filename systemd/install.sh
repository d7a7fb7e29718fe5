#!/usr/bin/env bash
# Install fild as a systemd service for this checkout.
#   systemd/install.sh            render, install to /etc/systemd/system, enable and start
#   systemd/install.sh --print    print the rendered unit only
#   systemd/install.sh --remove   stop, disable and remove the unit
set -euo pipefail
PRJ_ROOT=${PRJ_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
unit=/etc/systemd/system/fild.service
render() { sed "s|@PRJ_ROOT@|$PRJ_ROOT|g" "$PRJ_ROOT/systemd/fild.service"; }
case "${1:-}" in
    --print) render ;;
    --remove)
        systemctl disable --now fild.service 2>/dev/null || true
        rm -f "$unit"
        systemctl daemon-reload 2>/dev/null || true
        ;;
    "")
        [ -x "$PRJ_ROOT/bin/fild" ] || { echo "install.sh: build first (scripts/quickstart.sh installs bin/fild)" >&2; exit 1; }
        render >"$unit"
        if [ -d /run/systemd/system ]; then
            systemctl daemon-reload
            systemctl enable --now fild.service
            echo "fild.service installed and started"
        else
            echo "install.sh: $unit written; systemd is not running here, so it was not started" >&2
        fi
        ;;
    *) echo "usage: $0 [--print|--remove]" >&2; exit 2 ;;
esac
