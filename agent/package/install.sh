#!/usr/bin/env sh
# Installs the flotta agent: /opt/flotta-agent/flotta-agent (the single executable, when this
# tarball has one that runs on this machine) or /opt/flotta-agent/flotta-agent.js (needs Node.js
# >= 20), /etc/flotta-agent/agent.env (root's; the agent user reads the kubeconfig or config there
# through its group), the system user flotta-agent and the systemd unit, and (re)starts it. Needs
# root. PREFIX, ETC_DIR, SYSTEMD_UNIT_DIR and AGENT_USER move the places and the user.
#   ./install.sh [--kubeconfig FILE --device NAMESPACE/NAME | --config FILE] [--no-start] [-- AGENT OPTIONS]
# With a config source, agent.env is written from these arguments; when that changes an
# existing agent.env, the old one is kept as agent.env.previous and the change is said. Without
# one (an upgrade), an existing agent.env is kept as it is.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
prefix=${PREFIX:-/opt/flotta-agent}
etc=${ETC_DIR:-/etc/flotta-agent}
units=${SYSTEMD_UNIT_DIR:-/etc/systemd/system}
user=${AGENT_USER:-flotta-agent}
start=yes
kubeconfig=""; device=""; config=""; extra=""
while [ $# -gt 0 ]; do
  case "$1" in
    --kubeconfig) kubeconfig=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --no-start) start=no; shift ;;
    --) shift; extra=" $*"; break ;;
    *) echo "install.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
if [ -n "$kubeconfig" ] && [ -z "$device" ]; then echo "install.sh: --kubeconfig needs --device NAMESPACE/NAME" >&2; exit 2; fi

# The single executable when there is one for this machine (it runs), else the script on Node.js.
if [ -f "$here/flotta-agent" ] && "$here/flotta-agent" --version >/dev/null 2>&1; then
  program=flotta-agent
elif [ ! -f "$here/flotta-agent.js" ]; then
  echo "install.sh: this tarball's flotta-agent does not run on this machine ($(uname -m)); take the tarball for its architecture, or the one with flotta-agent.js (Node.js >= 20)" >&2
  exit 1
else
  program=flotta-agent.js
  command -v node >/dev/null 2>&1 || { echo "install.sh: Node.js >= 20 is needed and not found" >&2; exit 1; }
  major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$major" -ge 20 ] || { echo "install.sh: Node.js >= 20 is needed, found $(node --version)" >&2; exit 1; }
fi

# The agent's own user: no login, no home; it reads the volumes through CAP_DAC_READ_SEARCH.
if ! id "$user" >/dev/null 2>&1; then
  if command -v useradd >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
  else
    adduser -S -D -H -h /nonexistent -s /sbin/nologin "$user" # BusyBox
  fi
  echo "created the system user $user"
fi

umask 077
group=$(id -gn "$user")
mkdir -p "$prefix" "$etc"
# The config dir is root's: the agent reads it (group) and cannot change it, so nothing written
# here as root can be led elsewhere by a link the agent planted. An older install let the agent
# own it: take it back first, then drop any link left where root writes.
chown root:"$group" "$etc"
chmod 0750 "$etc"
for name in agent.env agent.env.previous kubeconfig config.json; do
  if [ -L "$etc/$name" ] || { [ -e "$etc/$name" ] && [ ! -f "$etc/$name" ]; }; then
    rm -rf "$etc/$name"
    echo "removed $etc/$name: not a regular file"
  fi
done
for name in kubeconfig config.json; do
  if [ -f "$etc/$name" ]; then chown root:"$group" "$etc/$name" && chmod 0640 "$etc/$name"; fi
done
for name in agent.env agent.env.previous; do
  if [ -f "$etc/$name" ]; then chown root:root "$etc/$name" && chmod 0600 "$etc/$name"; fi
done
install -m 0755 "$here/$program" "$prefix/$program"
# What an earlier install of the other kind left.
if [ "$program" = flotta-agent ]; then rm -f "$prefix/flotta-agent.js"; else rm -f "$prefix/flotta-agent"; fi
if [ "$program" = flotta-agent ]; then run="$prefix/flotta-agent"; else run="/usr/bin/env node $prefix/flotta-agent.js"; fi
install -m 0644 "$here/README.md" "$prefix/README.md"
if [ -n "$kubeconfig" ]; then install -o root -g "$group" -m 0640 "$kubeconfig" "$etc/kubeconfig"; fi
if [ -n "$config" ]; then install -o root -g "$group" -m 0640 "$config" "$etc/config.json"; fi

if [ -n "$device" ]; then
  args="--kubeconfig $etc/kubeconfig --device $device"
elif [ -n "$config" ]; then
  args="--config $etc/config.json"
else
  args=""
fi
if [ -n "$args" ]; then
  wanted="FLOTTA_AGENT_ARGS=\"$args --state-dir /var/lib/flotta-agent$extra\""
  if [ ! -f "$etc/agent.env" ]; then
    printf '%s\n' "$wanted" >"$etc/agent.env"
  elif [ "$(cat "$etc/agent.env")" != "$wanted" ]; then
    cp "$etc/agent.env" "$etc/agent.env.previous"
    printf '%s\n' "$wanted" >"$etc/agent.env"
    echo "updated $etc/agent.env (the old one is $etc/agent.env.previous)"
  fi
elif [ ! -f "$etc/agent.env" ]; then
  echo "install.sh: no agent.env yet: give --config FILE or --kubeconfig FILE --device NS/NAME" >&2; exit 2
fi
# The agent keeps a renewed token in its state dir (/var/lib/flotta-agent), never here.
$run --version >/dev/null

mkdir -p "$units"
install -m 0644 "$here/flotta-agent.service" "$units/flotta-agent.service"
sed -i "s|^ExecStart=.*|ExecStart=$run run \$FLOTTA_AGENT_ARGS|" "$units/flotta-agent.service"
if [ "$user" != flotta-agent ]; then sed -i "s/^User=.*/User=$user/; s/^Group=.*/Group=$user/" "$units/flotta-agent.service"; fi
# Only where systemd is the running init (not in containers or chroots) can the unit start.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl daemon-reload
  if [ "$start" = yes ]; then systemctl enable flotta-agent && systemctl restart flotta-agent; fi
  echo "installed; logs: journalctl -u flotta-agent; settings: $etc/agent.env"
else
  echo "installed to $prefix (no systemd here): run  $run run $(sed -n 's/^FLOTTA_AGENT_ARGS="\(.*\)"/\1/p' "$etc/agent.env")"
fi
