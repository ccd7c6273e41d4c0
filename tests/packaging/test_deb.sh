#!/usr/bin/env bash
# The Debian package as an administrator meets it: builds it with cpack from
# the tested build, runs lintian on it and its -dbgsym (no error, no
# warning: docs/PACKAGING.md lists the info tags left), installs both with
# dpkg in a throwaway Debian 12 root and checks the groups, the files, the
# conffile, the unit's state, an upgrade and a purge.
#
#   tests/packaging/test_deb.sh [BUILD_DIR]
#
# BUILD_DIR defaults to $CLOVIS_BUILD_DIR or <repo>/build. The root is a copy
# of the tar scripts/test.sh makes (tests/packaging/deb_root.sh): no
# network here. Needs root (chroot); without root or the tar the install
# checks are skipped, which CLOVIS_REQUIRE_PRIVILEGED=1 (CI) makes a failure.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${1:-${CLOVIS_BUILD_DIR:-$repo/build}}
# shellcheck source=tests/packaging/report.sh
. "$repo/tests/packaging/report.sh"
# shellcheck source=tests/packaging/deb_root.sh
. "$repo/tests/packaging/deb_root.sh"

# 1. The package, built as documented (docs/PACKAGING.md), into scratch.
if ! out=$(cpack --config "$build/CPackConfig.cmake" -B "$tmp/pkg" 2>&1); then
  fail "cpack" "$out"
  echo "$passed passed, $failed failed"
  exit 1
fi
debs=("$tmp"/pkg/clovis_*.deb)
ddebs=("$tmp"/pkg/clovis-dbgsym_*.ddeb)
if [ ! -e "${debs[0]}" ] || [ ! -e "${ddebs[0]}" ]; then
  fail "cpack" "no clovis_*.deb and clovis-dbgsym_*.ddeb in $tmp/pkg: $(ls "$tmp/pkg")"
  echo "$passed passed, $failed failed"
  exit 1
fi
deb=${debs[0]} ddeb=${ddebs[0]}
pass "cpack: ${deb##*/} ${ddeb##*/}"

# 2. lintian: errors and warnings fail; info tags are listed in PACKAGING.md.
if ! command -v lintian >/dev/null; then
  fail "lintian" "lintian is not installed (scripts/bootstrap.sh)"
else
  out=$(lintian --fail-on none "$deb" "$ddeb" 2>&1 | grep -v "running with root privileges")
  if grep -q '^[EW]:' <<<"$out"; then
    fail "lintian: no error or warning" "$out"
  else
    pass "lintian: no error or warning"
  fi
fi

# 3. Installed in a throwaway Debian root.
if [ "$(id -u)" -ne 0 ]; then
  skip "install in a Debian root" "chroot needs root"
elif [ ! -e "$deb_root" ]; then
  skip "install in a Debian root" "no $deb_root: run scripts/test.sh (as root, with the Debian mirror), or: . tests/packaging/deb_root.sh && make_deb_root"
else
  root=$tmp/root
  mkdir "$root" && tar -C "$root" -xf "$deb_root"
  cp "$deb" "$ddeb" "$root/tmp/"
  in_root() { chroot "$root" "$@"; }
  check() {  # check NAME COMMAND...: pass when COMMAND (run in the root) succeeds
    local name=$1 out
    shift
    if out=$(in_root sh -c "$*" 2>&1); then pass "$name"; else fail "$name" "$*: ${out:-failed}"; fi
  }
  if ! out=$(in_root dpkg -i "/tmp/${deb##*/}" "/tmp/${ddeb##*/}" 2>&1); then
    fail "dpkg -i" "$out"
  else
    pass "dpkg -i ${deb##*/} ${ddeb##*/}"
    check "group clovis" getent group clovis
    check "group clovis-proxy" getent group clovis-proxy
    check "clovisctl runs (its libraries are the Depends)" clovisctl --version
    check "clovisd runs" clovisd --version
    for bin in /usr/sbin/clovisd /usr/bin/clovisctl; do
      if readelf -S "$root$bin" | grep -qE '\.(symtab|debug_info)'; then
        fail "$bin stripped" "$(readelf -S "$root$bin" | grep -E '\.(symtab|debug_info)')"
      else
        pass "$bin stripped"
      fi
      id=$(readelf -n "$root$bin" | sed -n 's/^ *Build ID: *\([0-9a-f]*\)$/\1/p')
      dbg=/usr/lib/debug/.build-id/${id:0:2}/${id:2}.debug
      # readelf from the host: binutils is not in the root.
      if [ -n "$id" ] && readelf -S "$root$dbg" 2>/dev/null | grep -q '\.debug_info'; then
        pass "$bin: debug symbols in $dbg"
      else
        fail "$bin: debug symbols in $dbg" "no build ID ('$id') or no .debug_info in $root$dbg"
      fi
    done
    for f in /usr/lib/systemd/system/clovisd.service /usr/lib/sysusers.d/clovis.conf \
             /usr/share/bash-completion/completions/clovisctl /usr/share/zsh/vendor-completions/_clovisctl \
             /usr/share/fish/vendor_completions.d/clovisctl.fish /usr/share/doc/clovis/copyright \
             /usr/share/clovis/prometheus/clovis-alerts.yml /usr/share/clovis/grafana/clovis-dashboard.json; do
      check "$f" test -s "$f"
    done
    for f in /usr/share/man/man8/clovisd.8.gz /usr/share/man/man8/clovisctl.8.gz \
             /usr/share/man/man5/clovis-wan.yaml.5.gz /usr/share/doc/clovis/changelog.gz; do
      check "$f (gzip)" gzip -t "$f"
    done
    check "/etc/default/clovisd is a conffile" \
      "dpkg-query -W -f='\${Conffiles}' clovis | grep -q '^ /etc/default/clovisd '"
    wants=/etc/systemd/system/multi-user.target.wants/clovisd.service
    check "clovisd.service not enabled by the install" "! test -e $wants"
    # The administrator enables it (the link `systemctl enable` makes: no
    # systemd in the root); an upgrade (the same package again) keeps it.
    in_root mkdir -p "${wants%/*}"
    in_root ln -s /lib/systemd/system/clovisd.service "$wants"
    if out=$(in_root dpkg -i "/tmp/${deb##*/}" 2>&1); then pass "upgrade"; else fail "upgrade" "$out"; fi
    check "clovisd.service still enabled after the upgrade" test -L "$wants"
    in_root mkdir -p /var/lib/clovis
    in_root touch /var/lib/clovis/mapping.yaml
    # Steering left by a stopped clovisd (a pin directory; CLOVIS_OPTS names
    # it): the removal takes it back with clovisd --uninstall. In a network
    # namespace of its own, so that the uninstall's netlink work cannot touch
    # this host's routing.
    in_root mkdir -p /sys/fs/bpf/clovis-t/maps
    in_root sh -c 'echo "CLOVIS_OPTS=\"--pin-dir /sys/fs/bpf/clovis-t --state-dir /var/lib/clovis\"" >>/etc/default/clovisd'
    if out=$(unshare --net chroot "$root" dpkg --purge clovis-dbgsym clovis 2>&1); then
      pass "dpkg --purge"
    else
      fail "dpkg --purge" "$out"
    fi
    case $out in
      *"removing clovis's steering"*) pass "remove: clovisd --uninstall ran" ;;
      *) fail "remove: clovisd --uninstall ran" "$out" ;;
    esac
    check "remove: the pin directory of CLOVIS_OPTS is gone" "! test -e /sys/fs/bpf/clovis-t"
    check "purge: the unit's links gone" "! test -e $wants"
    check "purge: deb-systemd-helper's state gone" \
      "! test -e /var/lib/systemd/deb-systemd-helper-enabled/clovisd.service.dsh-also"
    check "purge: /etc/default/clovisd gone" "! test -e /etc/default/clovisd"
    check "purge: /var/lib/clovis gone" "! test -e /var/lib/clovis"
    check "purge: group clovis kept" getent group clovis
  fi
fi

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
