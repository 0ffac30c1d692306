#!/usr/bin/env sh
# Installs the flotta agent: /opt/flotta-agent/flotta-agent.js, /etc/flotta-agent/agent.env
# (kept if present) and the systemd unit, and starts it. Needs Node.js >= 20 and root.
# PREFIX, ETC_DIR and SYSTEMD_UNIT_DIR move the three places.
#   ./install.sh [--kubeconfig FILE --device NAMESPACE/NAME | --config FILE] [--no-start]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
prefix=${PREFIX:-/opt/flotta-agent}
etc=${ETC_DIR:-/etc/flotta-agent}
units=${SYSTEMD_UNIT_DIR:-/etc/systemd/system}
start=yes
kubeconfig=""; device=""; config=""
while [ $# -gt 0 ]; do
  case "$1" in
    --kubeconfig) kubeconfig=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --no-start) start=no; shift ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

command -v node >/dev/null 2>&1 || { echo "install.sh: Node.js >= 20 is needed and not found" >&2; exit 1; }
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || { echo "install.sh: Node.js >= 20 is needed, found $(node --version)" >&2; exit 1; }

umask 077
mkdir -p "$prefix" "$etc"
install -m 0755 "$here/flotta-agent.js" "$prefix/flotta-agent.js"
install -m 0644 "$here/README.md" "$prefix/README.md"
if [ -n "$kubeconfig" ]; then install -m 0600 "$kubeconfig" "$etc/kubeconfig"; fi
if [ -n "$config" ]; then install -m 0600 "$config" "$etc/config.json"; fi
if [ ! -f "$etc/agent.env" ]; then
  if [ -n "$device" ]; then
    args="--kubeconfig $etc/kubeconfig --device $device"
  else
    args="--config $etc/config.json"
  fi
  printf 'FLOTTA_AGENT_ARGS="%s --state-dir /var/lib/flotta-agent"\n' "$args" >"$etc/agent.env"
fi
node "$prefix/flotta-agent.js" --version >/dev/null

mkdir -p "$units"
install -m 0644 "$here/flotta-agent.service" "$units/flotta-agent.service"
# Only where systemd is the running init (not in containers or chroots) can the unit start.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl daemon-reload
  if [ "$start" = yes ]; then systemctl enable --now flotta-agent; fi
  echo "installed; logs: journalctl -u flotta-agent; settings: $etc/agent.env"
else
  echo "installed to $prefix (no systemd here): run  node $prefix/flotta-agent.js run $(sed -n 's/^FLOTTA_AGENT_ARGS="\(.*\)"/\1/p' "$etc/agent.env")"
fi
