#!/bin/sh
# Splits the debug information off the ELF binaries of a staged package tree
# and packs it as NAME-dbgsym_VERSION_ARCH.ddeb, the way dh_strip and
# dh_gencontrol do (debug files by build ID, Package-Type ddeb). Run by CPack
# before it packs the tree (cmake/DebDbgsym.cmake).
#
#   dbgsym.sh STAGING OUTDIR NAME VERSION ARCH MAINTAINER BINARY...
#
# BINARY: paths inside STAGING (usr/sbin/clovisd). CPack's own dbgsym
# support (CMake 3.25) writes the staging directory's absolute paths into the
# .ddeb's md5sums, which lintian rejects, and strips less than dh_strip.
set -eu
staging=$1 outdir=$2 name=$3 version=$4 arch=$5 maintainer=$6
shift 6

dbg=$(mktemp -d)
trap 'rm -rf "$dbg"' EXIT
ids=
for bin in "$@"; do
  file=$staging/$bin
  id=$(readelf -n "$file" | sed -n 's/^ *Build ID: *\([0-9a-f]*\)$/\1/p')
  if [ -z "$id" ]; then
    echo "dbgsym.sh: $file has no build ID (link with --build-id)" >&2
    exit 1
  fi
  debug=$dbg/usr/lib/debug/.build-id/$(echo "$id" | cut -c1-2)/$(echo "$id" | cut -c3-).debug
  mkdir -p "$(dirname "$debug")"
  objcopy --only-keep-debug --compress-debug-sections "$file" "$debug"
  chmod 644 "$debug"
  # dh_strip's options: symbols not needed for relocation, the compiler's
  # .comment and .note go; the build ID note stays (it names the debug file).
  strip --remove-section=.comment --remove-section=.note --strip-unneeded "$file"
  ids="$ids${ids:+ }$id"
done

# Debian's dbgsym packages carry no documentation of their own: their doc
# directory is a link to the package's.
mkdir -p "$dbg/usr/share/doc" "$dbg/DEBIAN"
ln -s "$name" "$dbg/usr/share/doc/$name-dbgsym"
size=$(du -sk --exclude=DEBIAN "$dbg" | cut -f1)
cat >"$dbg/DEBIAN/control" <<CONTROL
Package: $name-dbgsym
Source: $name
Version: $version
Auto-Built-Package: debug-symbols
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Depends: $name (= $version)
Section: debug
Priority: optional
Description: debug symbols for $name
Build-Ids: $ids
Package-Type: ddeb
CONTROL
(cd "$dbg" && find usr -type f -print0 | sort -z | xargs -0 md5sum >DEBIAN/md5sums)
find "$dbg" -type d -exec chmod 755 {} +
dpkg-deb --root-owner-group -Zgzip --build "$dbg" "$outdir/${name}-dbgsym_${version}_${arch}.ddeb" >/dev/null
echo "dbgsym.sh: $outdir/${name}-dbgsym_${version}_${arch}.ddeb"
