#!/usr/bin/env bash
# Installs every Debian package clovis needs to build, test and run its demo.
# Idempotent: does nothing (and needs no network) when everything is already installed.
set -euo pipefail

pkgs=(
  build-essential cmake ninja-build pkg-config git
  clang llvm clang-14 clang-format libclang-rt-14-dev libbpf-dev bpftool libelf-dev zlib1g-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libcli11-dev libyaml-cpp-dev libfmt-dev nlohmann-json3-dev doctest-dev
  iproute2 ethtool iperf3 tcpdump iputils-ping socat nftables iptables python3 python3-grpcio mandoc strace
  fish zsh systemd systemd-container
  # prometheus: promtool for tests/packaging/test_monitoring.sh, and the server
  # test_metrics.py scrapes clovisd with; python3-yaml: the monitoring checker;
  # prometheus-cpp-dev: clovisd's exporter (agentd/metrics/)
  prometheus python3-yaml prometheus-cpp-dev
  # python3-kubernetes: the Kubernetes API schema (its generated models) that
  # tests/packaging/check_kubernetes.py decodes packaging/kubernetes/ against
  python3-kubernetes
  # the container image (packaging/container/build.sh, docs/CONTAINER.md): mmdebstrap
  # makes its base layer, umoci the OCI image; podman with runc runs it in
  # tests/integration/test_container.py (crun refuses this kind of host)
  mmdebstrap umoci podman runc
  # tests/packaging/test_deb.sh: lintian checks the .deb, mmdebstrap makes the
  # Debian root it is installed in (docs/PACKAGING.md)
  lintian
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "bootstrap: all ${#pkgs[@]} packages present"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "bootstrap: missing packages (${missing[*]}) and not root; run as root or: sudo $0" >&2
  exit 1
fi
echo "bootstrap: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "bootstrap: done"
