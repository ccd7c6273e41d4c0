#!/usr/bin/env bash
# Builds clovis's container image from the project's own .deb; nothing is pulled from
# an image registry. Two steps (docs/CONTAINER.md):
#
#   build.sh base DEB [--refresh]
#       The base layer: the .deb's runtime dependencies (its Depends:, read with
#       dpkg-deb -f) and their closure, unpacked by mmdebstrap from the Debian mirror and
#       trimmed. The only step that needs the network; cached under $CACHE keyed by the
#       package list, so it runs once per list (scripts/test.sh runs it before ctest).
#   build.sh image DEB OUT [--tag TAG] [--stamp TEXT] [--bundle DIR]
#       Offline. An OCI image layout in OUT (tag TAG, default "latest") with two layers:
#       the cached base, and the app layer (the .deb's files, clovis's system groups,
#       its package record). --stamp labels the image (org.opencontainers.image.version)
#       and writes /etc/clovis-image; --bundle also unpacks it as an OCI runtime bundle
#       (DIR/config.json, DIR/rootfs) for systemd-nspawn or runc. Prints the image size.
#   build.sh packages DEB
#       Lists the packages the base layer is made of (before their dependencies).
#
# Environment: CLOVIS_CONTAINER_CACHE (default /var/cache/clovis/container),
# CLOVIS_CONTAINER_SUITE (default bookworm), CLOVIS_CONTAINER_MIRROR (default
# http://deb.debian.org/debian). Needs root, mmdebstrap (base), umoci, dpkg-deb.
set -euo pipefail

CACHE=${CLOVIS_CONTAINER_CACHE:-/var/cache/clovis/container}
SUITE=${CLOVIS_CONTAINER_SUITE:-bookworm}
MIRROR=${CLOVIS_CONTAINER_MIRROR:-http://deb.debian.org/debian}
# Bump when the base layer's recipe changes, so cached bases made by an older recipe
# are not reused.
RECIPE=1
# Needed by the package's maintainer scripts only, which do not run in the image (it
# has no shell and no dpkg): left out of the base. The one effect of clovis's postinst,
# its system groups, is made by the image step (add_groups).
SCRIPT_ONLY_DEPS="adduser passwd debconf init-system-helpers"
# clovis's system groups (clovisd(8)): clovis may use the API, clovis-proxy only the
# ext_authz socket.
GROUPS_TO_ADD="clovis clovis-proxy"

# Scratch directories, removed on exit whatever happens.
tmp="" work=""
trap 'rm -rf ${tmp:+"$tmp"} ${work:+"$work"}' EXIT

die() { echo "build.sh: $*" >&2; exit 1; }
usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

# The runtime package names: the first alternative of each Pre-Depends:/Depends: entry,
# versions dropped, maintainer-script-only packages left out, sorted. base-files and
# base-passwd give /etc/os-release and the passwd/group files.
runtime_packages() {
  local deb=$1
  { dpkg-deb -f "$deb" Pre-Depends Depends | sed -E 's/^(Pre-)?Depends: *//I' | tr ',' '\n' |
      sed -E 's/\|.*//; s/\(.*\)//; s/:any//; s/[[:space:]]//g'
    echo base-files; echo base-passwd
    # busybox: /bin/sh for the Kubernetes DaemonSet's start script, which uses shell
    # builtins only (packaging/kubernetes/daemonset.yaml); none of its other applets
    # is linked. 0.8 MB.
    echo busybox; } |
    grep -v '^$' | grep -vxF -f <(tr ' ' '\n' <<<"$SCRIPT_ONLY_DEPS") | sort -u
}

base_key() {
  { echo "recipe=$RECIPE suite=$SUITE mirror=$MIRROR"; runtime_packages "$1"; } | sha256sum | cut -c1-16
}

base_path() { echo "$CACHE/base-$(base_key "$1").tar"; }

# Trims what a minimal image does not ship: docs (copyright files stay), man and info
# pages, translations, iconv modules, apt and dpkg leftovers. The package records stay
# in /var/lib/dpkg/status.d/ (one file per package, as distroless images keep them) so
# scanners can list what is inside.
trim_root() {
  local root=$1
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/{man,info,locale,lintian,gdb,bug,bash-completion}
  rm -rf "$root"/usr/lib/*/gconv "$root"/var/cache/* "$root"/var/lib/apt
  rm -rf "$root"/etc/apt "$root"/var/log/* "$root"/usr/share/base-passwd/*.master.orig
  find "$root/var/lib/dpkg" -mindepth 1 -maxdepth 1 -not -name status.d -exec rm -rf {} +
  # The package scripts did not run: make what base-passwd's preinst and libc-bin's
  # trigger would (the passwd and group files, the loader cache).
  cp "$root/usr/share/base-passwd/passwd.master" "$root/etc/passwd"
  cp "$root/usr/share/base-passwd/group.master" "$root/etc/group"
  ldconfig -r "$root"
}

cmd_base() {
  local deb=$1 refresh=${2:-}
  local out pkgs
  out=$(base_path "$deb")
  if [ -s "$out" ] && [ "$refresh" != --refresh ]; then
    echo "base layer: $out (cached)"
    return 0
  fi
  command -v mmdebstrap >/dev/null || die "mmdebstrap not installed (scripts/bootstrap.sh)"
  pkgs=$(runtime_packages "$deb" | paste -sd, -)
  mkdir -p "$CACHE"
  tmp=$(mktemp -d "$CACHE/base.XXXXXX")
  echo "base layer: mmdebstrap $SUITE with $pkgs"
  # --variant=extract unpacks the packages and their dependency closure without running
  # maintainer scripts: no Essential set, no shell, no dpkg in the result. The hook saves
  # each package's record before mmdebstrap removes the downloaded .debs (the extract
  # variant runs extract hooks only). The hook is expanded by mmdebstrap's shell, not here.
  # shellcheck disable=SC2016
  mmdebstrap --quiet --variant=extract --include="$pkgs" \
    --extract-hook='mkdir -p "$1/var/lib/dpkg/status.d"; for d in "$1"/var/cache/apt/archives/*.deb; do dpkg-deb -f "$d" > "$1/var/lib/dpkg/status.d/$(dpkg-deb -f "$d" Package)"; done' \
    "$SUITE" "$tmp/root" \
    "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" \
    "deb ${MIRROR%/debian}/debian-security $SUITE-security main" </dev/null
  trim_root "$tmp/root"
  tar --numeric-owner --xattrs -C "$tmp/root" -cf "$tmp/base.tar" .
  runtime_packages "$deb" >"${out%.tar}.packages"
  mv "$tmp/base.tar" "$out"
  echo "base layer: $out ($(du -m "$out" | cut -f1) MB)"
}

add_groups() {
  local root=$1 g
  for g in $GROUPS_TO_ADD; do
    grep -q "^$g:" "$root/etc/group" || groupadd --root "$root" --system "$g"
  done
}

cmd_image() {
  local deb=$1 out=$2; shift 2
  local tag=latest stamp="" bundle="" base version
  while [ $# -gt 0 ]; do
    case "$1" in
      --tag) tag=$2; shift ;;
      --stamp) stamp=$2; shift ;;
      --bundle) bundle=$2; shift ;;
      *) usage ;;
    esac
    shift
  done
  command -v umoci >/dev/null || die "umoci not installed (scripts/bootstrap.sh)"
  base=$(base_path "$deb")
  [ -s "$base" ] || die "no base layer for $deb's dependencies ($base): run '$0 base $deb' first (needs the Debian mirror once)"
  version=$(dpkg-deb -f "$deb" Version)
  work=$(mktemp -d "${TMPDIR:-/tmp}/clovis-image.XXXXXX")
  rm -rf "$out"
  umoci init --layout "$out"
  umoci new --image "$out:$tag"
  umoci unpack --image "$out:$tag" "$work/bundle" >/dev/null
  # Layer 1: the base, as cached (the same digest for every image on one package list).
  tar --numeric-owner --xattrs -C "$work/bundle/rootfs" -xf "$base"
  umoci repack --refresh-bundle --history.created_by="build.sh base ($(basename "$base"))" \
    --image "$out:$tag" "$work/bundle"
  # Layer 2: the app. dpkg-deb -x is what dpkg's unpack does; configure would run the
  # postinst, whose effect (the groups) add_groups makes.
  local root=$work/bundle/rootfs
  dpkg-deb -x "$deb" "$root"
  # Mount points of the volumes, so the image runs with a read-only root.
  mkdir -p "$root/var/lib/clovis" "$root/run/clovis" "$root/etc/clovis"
  dpkg-deb -f "$deb" >"$root/var/lib/dpkg/status.d/$(dpkg-deb -f "$deb" Package)"
  trim_app "$root"
  add_groups "$root"
  ln -sfn busybox "$root/bin/sh"
  printf 'clovis %s\nimage %s\n' "$version" "${stamp:-$version}" >"$root/etc/clovis-image"
  umoci repack --history.created_by="build.sh image $(basename "$deb")" --image "$out:$tag" "$work/bundle"
  # clovisd is PID 1: SIGTERM stops it cleanly (exit 0, steering left in the kernel), as
  # under systemd. No default arguments: --lan names the site's interfaces.
  umoci config --image "$out:$tag" --config.entrypoint=/usr/sbin/clovisd \
    --config.stopsignal=SIGTERM --config.workingdir=/ \
    --config.volume=/var/lib/clovis --config.volume=/run/clovis \
    --config.label=org.opencontainers.image.title=clovis \
    --config.label=org.opencontainers.image.version="${stamp:-$version}" \
    --config.label=org.debian.package.version="$version"
  umoci gc --layout "$out"
  [ -z "$bundle" ] || { rm -rf "$bundle"; umoci unpack --image "$out:$tag" "$bundle" >/dev/null; }
  report_size "$out" "$tag" "$work/bundle/rootfs"
}

# The package's own docs and man pages go too (a container has no man); its
# copyright file stays.
trim_app() {
  local root=$1
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/man "$root"/usr/share/bash-completion "$root"/usr/share/fish "$root"/usr/share/zsh
}

# Unpacked: the root file system's bytes (what `podman images` shows as SIZE).
# Compressed: the sum of the gzip layer blobs (what a registry stores and a node pulls).
report_size() {
  local out=$1 tag=$2 root=$3 unpacked compressed
  unpacked=$(du -sb --apparent-size "$root" | cut -f1)
  compressed=$(python3 - "$out" "$tag" <<'EOF'
import json, sys, os
out, tag = sys.argv[1], sys.argv[2]
index = json.load(open(os.path.join(out, "index.json")))
desc = next(m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag)
blob = lambda d: os.path.join(out, "blobs", *d["digest"].split(":"))
manifest = json.load(open(blob(desc)))
print(" ".join(str(l["size"]) for l in manifest["layers"]))
EOF
)
  echo "image $out:$tag: unpacked $((unpacked / 1000000)) MB ($unpacked bytes);" \
       "layers compressed: $(for s in $compressed; do printf '%s MB ' $((s / 1000000)); done)"
}

[ $# -ge 2 ] || usage
[ "$(id -u)" = 0 ] || die "needs root (file ownership in the image, chroot for groupadd)"
sub=$1; deb=$2; shift 2
[ -f "$deb" ] || die "$deb: no such .deb"
case "$sub" in
  base) cmd_base "$deb" "$@" ;;
  image) [ $# -ge 1 ] || usage; cmd_image "$deb" "$@" ;;
  packages) runtime_packages "$deb" ;;
  *) usage ;;
esac
