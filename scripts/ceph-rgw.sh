#!/usr/bin/env bash
# A one-node Ceph cluster (monitor, one memstore OSD, RADOS Gateway) on 127.0.0.1, all state under one folder.
# It is the real S3 the registry's S3 storage driver is tested against (s3rver lacks ListMultipartUploads).
#
#   ceph-rgw.sh start  DIR [--port 7480] [--mon-port 6789] [--user vddkbuild] [--timeout 180]
#       S3 keys come from CEPH_RGW_ACCESS_KEY / CEPH_RGW_SECRET_KEY (generated when unset and written to
#       DIR/s3-credentials, mode 0600). Prints the endpoint (http://127.0.0.1:PORT) as the last line on success.
#   ceph-rgw.sh stop   DIR   stops the daemons by the PIDs in DIR/run/*.pid (never by name)
#   ceph-rgw.sh status DIR   exit 0 when all three daemons run and the endpoint answers
set -euo pipefail

# Tools started here must not see the workplace's CA bundle variables (see docs/local-infrastructure.md).
unset AWS_CA_BUNDLE

die() { echo "ceph-rgw: $*" >&2; exit 1; }
usage() { die "usage: ceph-rgw.sh start|stop|status DIR [--port N] [--mon-port N] [--user NAME] [--timeout SECONDS]"; }

(( $# >= 2 )) || usage
command=$1
dir=$2
shift 2
port=7480
mon_port=6789
user=vddkbuild
timeout=180
while (( $# > 0 )); do
  case $1 in
    --port) port=$2; shift 2 ;;
    --mon-port) mon_port=$2; shift 2 ;;
    --user) user=$2; shift 2 ;;
    --timeout) timeout=$2; shift 2 ;;
    *) usage ;;
  esac
done

daemons=(client.rgw.a osd.0 mon.a)

pid_of() {
  local file="$dir/run/$1.pid"
  [[ -s $file ]] && cat "$file"
}

# A daemon that exited may linger as a zombie until the init process reaps it; kill -0 still succeeds on it.
running() {
  [[ -r /proc/$1/status ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

alive() {
  local pid
  pid=$(pid_of "$1") || return 1
  running "$pid"
}

endpoint_answers() {
  local url
  url=$(cat "$dir/endpoint" 2>/dev/null) || return 1
  curl -s -o /dev/null --max-time 2 "$url/"
}

stop() {
  # All at once: the state is in memory (memstore) and thrown away, so there is nothing to flush in order.
  local name pid pids=() i
  for name in "${daemons[@]}"; do
    pid=$(pid_of "$name") || continue
    kill "$pid" 2>/dev/null && pids+=("$pid")
  done
  for (( i = 0; i < 20; i++ )); do
    local busy=0
    for pid in "${pids[@]}"; do running "$pid" && busy=1; done
    (( busy )) || break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for name in "${daemons[@]}"; do rm -f "$dir/run/$name.pid"; done
}

status() {
  local name ok=0
  for name in "${daemons[@]}"; do
    if alive "$name"; then echo "$name running (pid $(pid_of "$name"))"; else echo "$name not running"; ok=1; fi
  done
  if endpoint_answers; then echo "endpoint $(cat "$dir/endpoint") answers"; else echo "endpoint not answering"; ok=1; fi
  return $ok
}

wait_for() {
  local what=$1 deadline=$(( SECONDS + timeout ))
  shift
  until "$@" >/dev/null 2>&1; do
    if (( SECONDS >= deadline )); then
      echo "ceph-rgw: timed out after ${timeout}s waiting for $what; logs in $dir/log" >&2
      tail -n 20 "$dir"/log/*.log >&2 2>/dev/null || true
      stop
      exit 1
    fi
    sleep 0.5
  done
}

random_token() { head -c 64 /dev/urandom | tr -dc 'A-Za-z0-9' | head -c "$1"; }

start() {
  [[ -e $dir/ceph.conf ]] && die "$dir already holds a cluster; stop it and use a fresh folder"
  mkdir -p "$dir"/{mon,osd,rgw,run,log}
  dir=$(cd "$dir" && pwd)
  local fsid conf
  fsid=$(cat /proc/sys/kernel/random/uuid)
  conf=$dir/ceph.conf
  cat > "$conf" <<CONF
[global]
fsid = $fsid
mon host = 127.0.0.1:$mon_port
public addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
# RGW creates several pools on first start; small pools keep one OSD within its PG limit.
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
osd objectstore = memstore
memstore device bytes = 4294967296
osd crush chooseleaf type = 0
run dir = $dir/run
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
mon cluster log file = $dir/log/cluster.log
admin socket = $dir/run/\$name.asok
keyring = $dir/keyring
[mon.a]
mon data = $dir/mon
[osd.0]
osd data = $dir/osd
keyring = $dir/osd/keyring
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$port
rgw data = $dir/rgw
keyring = $dir/rgw/keyring
CONF
  export CEPH_CONF=$conf
  local ceph=(ceph --connect-timeout 30)

  ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$dir/keyring" --gen-key -n client.admin \
    --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' >/dev/null
  monmaptool --create --add a "127.0.0.1:$mon_port" --fsid "$fsid" "$dir/monmap" >/dev/null
  ceph-mon --mkfs -i a --monmap "$dir/monmap" --keyring "$dir/keyring"
  ceph-mon -i a 2>>"$dir/log/daemon-start.log"
  wait_for "the monitor" "${ceph[@]}" mon stat

  "${ceph[@]}" osd create >/dev/null
  # --no-mon-config: mkfs otherwise tries to fetch config from the monitor before it has a key.
  ceph-osd -i 0 --mkfs --mkkey --no-mon-config 2>>"$dir/log/osd-mkfs.log"
  "${ceph[@]}" auth add osd.0 osd 'allow *' mon 'allow profile osd' -i "$dir/osd/keyring" >/dev/null 2>&1
  "${ceph[@]}" osd crush add-bucket localhost host >/dev/null 2>&1
  "${ceph[@]}" osd crush move localhost root=default >/dev/null 2>&1
  "${ceph[@]}" osd crush add osd.0 1.0 host=localhost >/dev/null 2>&1
  ceph-osd -i 0 2>>"$dir/log/daemon-start.log"
  wait_for "the OSD to come up" bash -c "\"\$@\" osd dump | grep -q '^osd.0 up'" _ "${ceph[@]}"

  "${ceph[@]}" auth get-or-create client.rgw.a mon 'allow rw' osd 'allow rwx' -o "$dir/rgw/keyring" 2>/dev/null
  radosgw -n client.rgw.a 2>>"$dir/log/daemon-start.log"
  echo "http://127.0.0.1:$port" > "$dir/endpoint"
  wait_for "the RADOS Gateway on port $port" endpoint_answers

  local access=${CEPH_RGW_ACCESS_KEY:-} secret=${CEPH_RGW_SECRET_KEY:-}
  [[ -n $access ]] || access=$(random_token 20)
  [[ -n $secret ]] || secret=$(random_token 40)
  radosgw-admin user create --uid="$user" --display-name="$user" \
    --access-key="$access" --secret="$secret" >/dev/null 2>>"$dir/log/radosgw-admin.log"
  (umask 077; printf 'access_key=%s\nsecret_key=%s\n' "$access" "$secret" > "$dir/s3-credentials")
  cat "$dir/endpoint"
}

case $command in
  start) start ;;
  stop) [[ -d $dir ]] || die "no such folder: $dir"; stop ;;
  status) status ;;
  *) usage ;;
esac
