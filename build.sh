#!/usr/bin/env bash
# The one entry point for building, testing, packing and demonstrating VddkBuild.
#   ./build.sh deps    install the Debian packages the tests and the demo need (root; idempotent)
#   ./build.sh build   build the whole solution
#   ./build.sh test    deps + build + every test project; the last line is "N passed, N failed, N skipped"
#   ./build.sh pack    the NuGet task package into artifacts/packages
#   ./build.sh demo    sample archive + stand-in base -> image archive via samples/PublishVddk -> skopeo + Forklift check
#   ./build.sh bench   podman vs .NET SDK vs PublishVddk (cold/warm/changed) vs the floor; prints a table (root; options: --help)
# CONFIGURATION (default Release) selects the build configuration.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$repo_root"

configuration=${CONFIGURATION:-Release}
export DOTNET_NOLOGO=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

log() { printf '==> %s\n' "$*" >&2; }

deps() {
  log "installing dependencies"
  bash scripts/install-deps.sh
}

build() {
  log "building VddkBuild.sln ($configuration)"
  dotnet build VddkBuild.sln -c "$configuration" -nologo -clp:ErrorsOnly
}

# Test projects are the solution's projects that reference the test SDK (tests/VddkBuild.TestSupport does not).
test_projects() {
  dotnet sln VddkBuild.sln list | tr '\\' '/' | grep -E '\.csproj$' | while read -r project; do
    if grep -q 'Microsoft.NET.Test.Sdk' "$project"; then printf '%s\n' "$project"; fi
  done
}

# Prints "passed failed skipped" from a TRX file's <Counters> element.
trx_counts() {
  local counters attr total passed failed
  counters=$(grep -o '<Counters [^>]*>' "$1" | head -n 1)
  attr() { sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p" <<<"$counters"; }
  total=$(attr total); passed=$(attr passed)
  failed=$(( $(attr failed) + $(attr error) + $(attr timeout) + $(attr aborted) ))
  printf '%s %s %s\n' "$passed" "$failed" "$(( total - passed - failed ))"
}

run_tests() {
  local results=artifacts/test-results project name trx rc counts p f s
  local passed=0 failed=0 skipped=0
  rm -rf "$results"
  mkdir -p "$results"
  mapfile -t projects < <(test_projects)
  (( ${#projects[@]} > 0 )) || { echo "no test projects found in VddkBuild.sln" >&2; echo "0 passed, 1 failed, 0 skipped"; return 1; }
  # One project at a time: the integration tests start real servers and containers, and the machine has 2 cores.
  for project in "${projects[@]}"; do
    name=$(basename "$project" .csproj)
    trx="$results/$name.trx"
    log "testing $name"
    rc=0
    dotnet test "$project" -c "$configuration" --no-build --nologo \
      --logger "trx;LogFileName=$repo_root/$trx" --logger "console;verbosity=normal" \
      --blame-hang-timeout 20m --blame-hang-dump-type none || rc=$?
    if [[ -f $trx ]]; then
      read -r p f s < <(trx_counts "$trx")
    else
      p=0 f=0 s=0
    fi
    if (( rc != 0 && f == 0 )); then
      # The run broke without recording a failed test (build error, crashed or hung test host): count it as one.
      echo "$name: dotnet test exited with code $rc without a failed test in its results; counting it as a failure" >&2
      f=1
    fi
    echo "$name: $p passed, $f failed, $s skipped" >&2
    passed=$(( passed + p )); failed=$(( failed + f )); skipped=$(( skipped + s ))
  done
  echo "$passed passed, $failed failed, $skipped skipped"
  (( failed == 0 && passed > 0 ))
}

pack() {
  # After `build`: the pack's own build finds the task assembly up to date, so the native worker built from that same
  # compilation (src/VddkBuild.Worker, linux-x64) goes into the package with it.
  log "packing src/VddkBuild.Tasks"
  dotnet pack src/VddkBuild.Tasks -c "$configuration" -o artifacts/packages -nologo
}

# Runs the Fixtures console (sample archive, stand-in base, Forklift check).
fixtures() {
  dotnet "tools/VddkBuild.Fixtures/bin/$configuration/net10.0/VddkBuild.Fixtures.dll" "$@"
}

demo() {
  local work=artifacts/demo archive base image
  dotnet build tools/VddkBuild.Fixtures -c "$configuration" -nologo -clp:ErrorsOnly
  rm -rf "$work"
  mkdir -p "$work"
  work=$(cd "$work" && pwd)

  log "making a VDDK-shaped sample archive (random bytes, no VMware code)"
  archive=$(fixtures sample-archive "$work")
  log "writing the stand-in base image (busybox, UBI-like layout, amd64 + arm64 index)"
  base=$(fixtures base-image --layout "$work/base-image")
  image=$work/vddk-image.tar

  log "building the VDDK image into an OCI archive with samples/PublishVddk (no registry)"
  dotnet build samples/PublishVddk -t:PublishVddk -nologo -v:m \
    -p:VddkArchive="$archive" -p:VddkBaseImage="$base" -p:VddkImageArchive="$image" -p:VddkUseCluster=false
  log "reading the image archive with skopeo"
  env -i PATH="$PATH" HOME="$HOME" skopeo inspect "oci-archive:$image"
  log "running the image as Forklift does (podman, arbitrary UID, /opt volume, no network)"
  fixtures forklift-check "oci-archive:$image"

  log "starting a local docker-registry and putting the stand-in base in it"
  local port registry
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  registry=127.0.0.1:$port
  mkdir -p "$work/registry"
  printf 'version: 0.1\nlog: {level: warn}\nstorage: {filesystem: {rootdirectory: %s}, delete: {enabled: true}}\nhttp: {addr: %s}\n' \
    "$work/registry/data" "$registry" > "$work/registry/config.yml"
  env -i PATH="$PATH" HOME="$HOME" docker-registry serve "$work/registry/config.yml" > "$work/registry/log" 2>&1 &
  demo_registry_pid=$!
  trap 'kill "$demo_registry_pid" 2>/dev/null || true' EXIT
  for _ in $(seq 1 50); do curl -fs "http://$registry/v2/" > /dev/null && break; sleep 0.1; done
  env -i PATH="$PATH" HOME="$HOME" skopeo copy --all --quiet --dest-tls-verify=false "$base" "docker://$registry/base/ubi-minimal:latest"

  log "publishing to $registry with samples/PublishVddk (twice: the second run finds every blob in place)"
  for run in first second; do
    log "$run run"
    dotnet build samples/PublishVddk -t:PublishVddk -nologo -v:m \
      -p:VddkArchive="$archive" -p:VddkBaseImage="$registry/base/ubi-minimal:latest" \
      -p:VddkRegistry="$registry" -p:VddkRegistryInsecure=true
  done
  log "reading the pushed image with skopeo and running it as Forklift does"
  env -i PATH="$PATH" HOME="$HOME" skopeo inspect --tls-verify=false "docker://$registry/openshift-mtv/vddk:8.0.1"
  fixtures forklift-check "docker://$registry/openshift-mtv/vddk:8.0.1" --insecure
  kill "$demo_registry_pid" 2>/dev/null || true
  log "demo done: $image"
}

# The benchmark (bench/VddkBuild.Bench): never part of `test`; its tables also land in artifacts/bench-results.md.
bench() {
  dotnet build bench/VddkBuild.Bench -c "$configuration" -nologo -clp:ErrorsOnly
  mkdir -p artifacts
  dotnet "bench/VddkBuild.Bench/bin/$configuration/net10.0/VddkBuild.Bench.dll" --repo "$repo_root" --out "$repo_root/artifacts/bench-results.md" "$@"
}

usage() {
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

case ${1:-} in
  deps) deps ;;
  build) build ;;
  test) deps; build; run_tests ;;
  pack) build; pack ;;
  demo) build; demo ;;
  bench) shift; deps; bench "$@" ;;
  *) usage ;;
esac
