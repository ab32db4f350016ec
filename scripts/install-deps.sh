#!/usr/bin/env bash
# Installs the tools the tests, the demo and CI need, from Debian's packages only.
# Idempotent: checks each package with dpkg first; runs `apt-get update` once, and only when something is missing.
# Must run as root (CI runs as root on a fresh Debian 12 machine); as another user it uses sudo when present.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

# Container tools and the local OCI registry. runc: crun fails on this kind of host (setrlimit/cgroups).
# fuse-overlayfs/uidmap: podman's storage and user-namespace helpers (podman recommends them; rootless runs need them).
# busybox-static: the stand-in base image's userland. apache2-utils: htpasswd for registry Basic auth.
# jq, curl: used by the scripts to read JSON and poll endpoints. time: GNU time -v, the benchmark's peak-RSS probe.
standard_packages=(
  docker-registry podman skopeo runc conmon fuse-overlayfs uidmap
  busybox-static apache2-utils jq curl ca-certificates
  time nodejs util-linux procps libarchive-tools
)
# Ceph for the S3 (RADOS Gateway) tests; recommends would pull in a large set of unrelated packages.
no_recommends_packages=(ceph-mon ceph-osd radosgw ceph-common)

as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -E "$@"
  else
    echo "install-deps: must run as root (or with sudo) to install: ${*: -1}" >&2
    exit 1
  fi
}

missing() {
  local pkg
  for pkg in "$@"; do
    # dpkg -s succeeds for removed-but-configured packages too; require the installed state.
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      printf '%s\n' "$pkg"
    fi
  done
}

start=$(date +%s)
mapfile -t missing_standard < <(missing "${standard_packages[@]}")
mapfile -t missing_norecommends < <(missing "${no_recommends_packages[@]}")

# s3rver (npm): an S3 imitation WITHOUT ListMultipartUploads, for the test proving the bucket check refuses such an S3.
# Installed from the npm registry with npm's ordinary client (Debian's nodejs package ships npm).
install_npm_tools() {
  if command -v s3rver >/dev/null 2>&1; then
    return
  fi
  echo "install-deps: installing s3rver (npm)"
  as_root npm install -g --no-fund --no-audit s3rver@3.7.1
}

if (( ${#missing_standard[@]} + ${#missing_norecommends[@]} == 0 )); then
  install_npm_tools
  echo "install-deps: all packages present"
  exit 0
fi

echo "install-deps: installing ${missing_standard[*]} ${missing_norecommends[*]}"
as_root apt-get update -qq
apt_install=(apt-get install -y -qq -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
if (( ${#missing_standard[@]} > 0 )); then
  as_root "${apt_install[@]}" "${missing_standard[@]}"
fi
if (( ${#missing_norecommends[@]} > 0 )); then
  as_root "${apt_install[@]}" --no-install-recommends "${missing_norecommends[@]}"
fi

# Package scripts may start services on hosts with an init system; the project starts its own instances
# on free loopback ports, so nothing here depends on them.
install_npm_tools
echo "install-deps: done in $(( $(date +%s) - start )) s"
