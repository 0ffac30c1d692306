#!/usr/bin/env bash
# The agent's .deb and .rpm for x86-64 and arm64, from the single executables hack/agent-exe.sh
# made: /usr/bin/flotta-agent, the unit in the system unit dir (running the executable),
# sysusers.d and tmpfiles.d entries for its user and directories, /etc/flotta-agent/agent.env
# as a config file (an upgrade keeps it), and the scriptlets of agent/package/linux/. Versions
# come from package.json. Run by hack/pack-agent.sh:
#   hack/agent-packages.sh VERSION EXE_PREFIX OUT_DIR
set -euo pipefail
. "$(dirname "$0")/lib.sh"
version=$1 exe_prefix=$2 out=$3
src=$HACK_DIR/../agent/package
need_apt dpkg-deb dpkg
need_apt rpmbuild rpm
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The unit as packaged: the executable, not Node.js and the script.
sed 's|^ExecStart=.*|ExecStart=/usr/bin/flotta-agent run $FLOTTA_AGENT_ARGS|; s|^Documentation=.*|Documentation=file:///usr/share/doc/flotta-agent/README.md|' \
  "$src/flotta-agent.service" >"$work/flotta-agent.service"

deb() { # ARCH DEB_ARCH
  local stage=$work/deb-$1
  install -D -m 0755 "$exe_prefix-linux-$1" "$stage/usr/bin/flotta-agent"
  install -D -m 0644 "$work/flotta-agent.service" "$stage/usr/lib/systemd/system/flotta-agent.service"
  install -D -m 0644 "$src/linux/sysusers.conf" "$stage/usr/lib/sysusers.d/flotta-agent.conf"
  install -D -m 0644 "$src/linux/tmpfiles.conf" "$stage/usr/lib/tmpfiles.d/flotta-agent.conf"
  install -D -m 0644 "$src/linux/agent.env" "$stage/etc/flotta-agent/agent.env"
  install -D -m 0644 "$src/README.md" "$stage/usr/share/doc/flotta-agent/README.md"
  mkdir -p "$stage/DEBIAN"
  install -m 0755 "$src/linux/debian/postinst" "$src/linux/debian/prerm" "$src/linux/debian/postrm" "$stage/DEBIAN/"
  echo /etc/flotta-agent/agent.env >"$stage/DEBIAN/conffiles"
  cat >"$stage/DEBIAN/control" <<CONTROL
Package: flotta-agent
Version: $version
Architecture: $2
Maintainer: Edge data upload maintainers <edge-upload@example.invalid>
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Depends: systemd
Section: admin
Priority: optional
Homepage: https://github.com/project-flotta
Description: Flotta edge data upload agent
 Uploads the files edge workloads write into S3 object storage, with the config its
 EdgeDevice's module assembles. One executable: no Node.js needed.
CONTROL
  dpkg-deb --root-owner-group -Zgzip --build "$stage" "$out/flotta-agent_${version}_$2.deb" >/dev/null
}

rpm_package() { # ARCH RPM_ARCH
  local top=$work/rpm-$1
  mkdir -p "$top/SOURCES" "$top/SPECS"
  cp "$exe_prefix-linux-$1" "$top/SOURCES/flotta-agent"
  cp "$work/flotta-agent.service" "$src/linux/sysusers.conf" "$src/linux/tmpfiles.conf" \
    "$src/linux/agent.env" "$src/README.md" "$top/SOURCES/"
  sed "s/@VERSION@/$version/" "$src/linux/flotta-agent.spec" >"$top/SPECS/flotta-agent.spec"
  rpmbuild --quiet -bb --target "$2" --define "_topdir $top" "$top/SPECS/flotta-agent.spec" >"$work/rpm.log" 2>&1 ||
    { cat "$work/rpm.log" >&2; exit 1; }
  cp "$top/RPMS/$2/flotta-agent-$version-1.$2.rpm" "$out/"
}

mkdir -p "$out"
deb x64 amd64
deb arm64 arm64
rpm_package x64 x86_64
rpm_package arm64 aarch64
