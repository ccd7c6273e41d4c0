# Sourced by scripts/test.sh (which makes it, make_deb_root) and tests/packaging/test_deb.sh
# (which installs the .deb in a copy of it): the Debian 12 root the package is
# tested in, a tar made once by mmdebstrap from the Debian mirror so that ctest
# needs no network. It holds the essential packages, the package's dependencies
# (dpkg-deb -f build/clovis_*.deb Depends) and init-system-helpers
# (deb-systemd-helper, which the maintainer scripts use). Its name holds a hash
# of the list: a changed list makes a new root.
# shellcheck shell=bash
deb_root_pkgs=adduser,init-system-helpers,libbpf1,libfmt9,libyaml-cpp0.7,libprometheus-cpp-pull1.0,libstdc++6,zlib1g
deb_root_dir=${CLOVIS_DEB_ROOT_DIR:-/var/cache/clovis}
deb_root=$deb_root_dir/bookworm-$(printf %s "$deb_root_pkgs" | md5sum | cut -c1-8).tar

# Makes $deb_root unless it exists: root and the Debian mirror, about 75 s, once.
make_deb_root() {
  [ -e "$deb_root" ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "no $deb_root for tests/packaging/test_deb.sh and not root; run as root" >&2
    return 1
  fi
  echo "making $deb_root (mmdebstrap, Debian mirror)"
  mkdir -p "$deb_root_dir"
  # mmdebstrap picks the format by the name's ending: .tar, also while partial.
  local part=$deb_root_dir/partial-${deb_root##*/}
  mmdebstrap --quiet --variant=essential --include="$deb_root_pkgs" bookworm "$part"
  mv "$part" "$deb_root"
}
