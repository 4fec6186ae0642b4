#!/usr/bin/env bash
# A throwaway single-node Ceph cluster in memory with a RADOS Gateway (RGW) in front: one monitor, one
# OSD on memstore, one radosgw on 127.0.0.1:<port>, and an S3 user with the given keys. For the e2e
# suite (test/harness/rgw.ts starts it) and for trying the API against RGW by hand.
#
#   scripts/rgw.sh DIR RGW_PORT MON_PORT ACCESS_KEY SECRET_KEY [WATCH_PID]
#
# Everything lives under DIR (config, monitor store, logs, sockets). Prints "RGW READY <seconds>" once
# the gateway answers and the user exists, then stays in the foreground until it gets SIGTERM/SIGINT
# or, when WATCH_PID is given, until that process is gone; either way it stops the daemons it started.
# The daemons run in the foreground (-f) as this script's children, in its process group.
#
# Needs Debian's ceph-mon, ceph-osd, radosgw and ceph-common (`.ci/run` installs them).
set -euo pipefail

if [ $# -lt 5 ]; then
  echo "usage: $0 DIR RGW_PORT MON_PORT ACCESS_KEY SECRET_KEY [WATCH_PID]" >&2
  exit 2
fi
dir=$1 rgw_port=$2 mon_port=$3 access_key=$4 secret_key=$5 watch_pid=${6:-}
started=$EPOCHREALTIME

for tool in ceph-mon ceph-osd radosgw radosgw-admin ceph monmaptool ceph-authtool; do
  command -v "$tool" >/dev/null || { echo "rgw.sh: $tool not found (apt-get install ceph-mon ceph-osd radosgw ceph-common)" >&2; exit 3; }
done

mkdir -p "$dir"/{mon,osd,run,log}
dir=$(cd "$dir" && pwd)
conf=$dir/ceph.conf
fsid=$(cat /proc/sys/kernel/random/uuid)

cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
mon initial members = a
public network = 127.0.0.0/8
# A throwaway cluster on loopback: no cephx. radosgw still insists on a signed monitor session unless
# its client mode is crc.
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
# One OSD: pools of one replica, placed across OSDs rather than hosts, few placement groups.
mon allow pool size one = true
osd pool default size = 1
osd pool default min size = 1
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
mon max pg per osd = 1000
# The monitor stops when its disk is nearly full; this cluster keeps nothing there worth the check.
mon data avail warn = 1
mon data avail crit = 0
osd objectstore = memstore
memstore device bytes = 1073741824
run dir = $dir/run
admin socket = $dir/run/\$name.asok
pid file = $dir/run/\$name.pid
log file = $dir/log/\$name.log
keyring = $dir/keyring
# Nothing to hand over to: keep the daemons' own threads and files few.
log to stderr = false
err to stderr = true
debug ms = 0

[mon.a]
mon data = $dir/mon

[osd.0]
osd data = $dir/osd

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw data = $dir/rgw
rgw dns name = 127.0.0.1
# Lifecycle rules are processed promptly in tests rather than once a day.
rgw lc debug interval = 10
EOF

pids=()
stop() {
  trap - TERM INT EXIT
  if [ ${#pids[@]} -gt 0 ]; then
    kill -TERM "${pids[@]}" 2>/dev/null || true
    # memstore has nothing to flush: give the daemons a moment, then make sure.
    for _ in $(seq 20); do
      alive=0
      for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
      [ $alive = 0 ] && break
      sleep 0.1
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
  fi
}
trap 'stop; exit 0' TERM INT
trap stop EXIT

ceph_cli() { timeout 30 ceph -c "$conf" --connect-timeout 20 "$@"; }

# The monitor.
ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$dir/monmap" >/dev/null
ceph-mon -c "$conf" -i a --mkfs --monmap "$dir/monmap" >"$dir/log/mkfs-mon.out" 2>&1
ceph-mon -c "$conf" -i a -f >>"$dir/log/mon.out" 2>&1 &
pids+=($!)

# The OSD: registered with the monitor, then formatted and started.
osd_uuid=$(cat /proc/sys/kernel/random/uuid)
osd_id=$(ceph_cli osd new "$osd_uuid")
ceph-osd -c "$conf" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >"$dir/log/mkfs-osd.out" 2>&1
ceph-osd -c "$conf" -i "$osd_id" -f >>"$dir/log/osd.out" 2>&1 &
pids+=($!)

# The gateway creates its pools on start, so it waits for the OSD by itself.
radosgw -c "$conf" -n client.rgw -f >>"$dir/log/rgw.out" 2>&1 &
pids+=($!)

deadline=$(($(date +%s) + ${RGW_START_TIMEOUT_SECONDS:-120}))
# Answers HTTP at all (no curl needed): bash's /dev/tcp and a bare request.
answers() {
  local status
  { exec 3<>"/dev/tcp/127.0.0.1/$rgw_port"; } 2>/dev/null || return 1
  printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  IFS= read -r -t 5 status <&3 || status=
  exec 3<&- 3>&-
  [[ $status == HTTP/* ]]
}
until answers; do
  for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "rgw.sh: a daemon exited during start-up; logs in $dir/log" >&2
      tail -n 20 "$dir"/log/*.out >&2 || true
      exit 1
    fi
  done
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "rgw.sh: the gateway did not answer on 127.0.0.1:$rgw_port in time; logs in $dir/log" >&2
    tail -n 20 "$dir"/log/*.out >&2 || true
    exit 1
  fi
  sleep 0.2
done

timeout 60 radosgw-admin -c "$conf" user create --uid=e2e --display-name="e2e tests" \
  --access-key="$access_key" --secret-key="$secret_key" >"$dir/log/user.json"

echo "RGW READY $(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')"

# Stay up until told to stop, or until the process that started us is gone.
while :; do
  if [ -n "$watch_pid" ] && ! kill -0 "$watch_pid" 2>/dev/null; then break; fi
  for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "rgw.sh: a daemon exited; logs in $dir/log" >&2
      exit 1
    fi
  done
  sleep 1 &
  wait $! || true
done
