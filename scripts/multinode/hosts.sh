#!/usr/bin/env bash
# Simulated hosts on this machine, for running OpenMPI across "nodes"
# (docs/multinode.md). Each host is a long-lived holder process made with
# unshare: its own host name (UTS namespace), its own mount namespace with a
# private tmpfs on /tmp and /dev/shm and a private /etc/hosts, and its own IPC
# namespace. The network namespace is shared, so the hosts talk TCP over
# loopback. Everything outside /tmp and /dev/shm (the build tree, /work, the
# checkpoint directory) is the same file system on every host.
#
#   hosts.sh up STATE_DIR [--hosts=N] [--slots=K] [--owner=PID]
#                                   start N hosts (default 2, K=2 slots each);
#                                   with --owner they also end when PID does
#   hosts.sh down STATE_DIR                         kill everything on them
#   hosts.sh exec STATE_DIR HOST CMD [ARG]...       run CMD on HOST
#   hosts.sh list STATE_DIR                         host names, one a line
#
# STATE_DIR (on a path every host sees, not /tmp) holds the holders' pids,
# the hostfile for mpirun and the hosts' /etc/hosts. Hosts are named mnode1,
# mnode2, ...; the names exist only inside the hosts (their /etc/hosts is a
# bind mount), so nothing on the machine itself is changed. Needs root (or
# CAP_SYS_ADMIN); without it `up` fails and says so.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 2 ] || usage
CMD=$1
STATE=$2
shift 2

die() { echo "multinode: $*" >&2; exit 1; }

# The holder's mount namespace, e.g. mnt:[4026532201]; empty if the holder
# is gone or its pid now belongs to another process.
holder_ns() {
  local host=$1 pid ns
  pid=$(cat "$STATE/$host.pid" 2>/dev/null) || return 0
  ns=$(readlink "/proc/$pid/ns/mnt" 2>/dev/null) || return 0
  [ "$ns" = "$(cat "$STATE/$host.ns" 2>/dev/null)" ] && echo "$ns"
  return 0
}

holder_pid() {
  local host=$1
  [ -n "$(holder_ns "$host")" ] || die "host $host is not up (no live holder in $STATE)"
  cat "$STATE/$host.pid"
}

hosts() { [ -f "$STATE/hostlist" ] && cat "$STATE/hostlist"; return 0; }

# "pid host" for every process in the hosts' mount namespaces (holders
# included); $@ are "host:nsid" pairs.
procs_on_hosts() {
  ps -e -o pid=,mntns= | awk -v hosts="$*" '
    BEGIN { n = split(hosts, h, " "); for (i = 1; i <= n; i++) { split(h[i], kv, ":"); ns[kv[2]] = kv[1] } }
    ($2 in ns) { print $1, ns[$2] }'
}

down() {
  [ -d "$STATE" ] || return 0
  local host ns pairs=() procs i
  for host in $(hosts); do
    ns=$(holder_ns "$host")
    ns=${ns#mnt:[}
    [ -z "$ns" ] || pairs+=("$host:${ns%]}")
  done
  if [ ${#pairs[@]} -gt 0 ]; then
    # Ranks, orted and the holders (unshare --kill-child goes with them):
    # only processes inside these hosts' mount namespaces are touched.
    for i in $(seq 50); do
      procs=$(procs_on_hosts "${pairs[@]}")
      [ -n "$procs" ] || break
      # shellcheck disable=SC2046
      kill -KILL $(echo "$procs" | cut -d' ' -f1) 2>/dev/null || true
      sleep 0.1
    done
    if [ -n "$procs" ]; then
      echo "multinode: processes left on the hosts (pid host): $(echo "$procs" | tr '\n' ' ')" >&2
      return 1
    fi
  fi
  for host in $(hosts); do rm -f "$STATE/$host.pid" "$STATE/$host.ns"; done
  rm -f "$STATE/hostlist" "$STATE/hostfile" "$STATE/etc_hosts"
}

up() {
  local n=2 slots=2 owner='' arg
  for arg in "$@"; do
    case $arg in
      --owner=*) owner=${arg#--owner=} ;;
      --hosts=*) n=${arg#--hosts=} ;;
      --slots=*) slots=${arg#--slots=} ;;
      *) usage ;;
    esac
  done
  [[ $n =~ ^[1-9]$ ]] || die "--hosts must be 1..9, not $n"
  [ "$(id -u)" -eq 0 ] || die "simulated hosts need root (unshare of UTS/mount/IPC namespaces and tmpfs mounts); running as $(id -un)"
  if ! command -v unshare >/dev/null || ! command -v nsenter >/dev/null; then
    die "unshare and nsenter (package util-linux) are missing"
  fi
  mkdir -p "$STATE"
  STATE=$(cd "$STATE" && pwd)
  case $STATE/ in /tmp/*|/dev/shm/*) die "STATE_DIR must be on a path all hosts share, not under /tmp or /dev/shm: $STATE" ;; esac
  [ -z "$(hosts)" ] || down || true

  # Each host gets a name that resolves inside every host to its own
  # loopback address 127.0.1.N. A name that resolved to 127.0.0.1 would make
  # mpirun take that host for its own node and merge the two.
  local i host etc_hosts=$STATE/etc_hosts
  local -A unshare_pid
  {
    echo "127.0.0.1 localhost"
    echo "::1 localhost ip6-localhost ip6-loopback"
    for i in $(seq "$n"); do echo "127.0.1.$i mnode$i"; done
  } >"$etc_hosts"
  : >"$STATE/hostfile"
  : >"$STATE/hostlist"
  for i in $(seq "$n"); do
    host=mnode$i
    echo "$host slots=$slots" >>"$STATE/hostfile"
    echo "$host" >>"$STATE/hostlist"
    rm -f "$STATE/$host.pid" "$STATE/$host.ns"
    # The holder keeps the namespaces alive; nsenter joins it. With an
    # owner it goes when the owner does, so a test killed with SIGKILL
    # (ctest's timeout) leaves no host behind; `down` is still the way out.
    # shellcheck disable=SC2016  # expanded by the holder's shell
    unshare --uts --mount --ipc --propagation private --fork --kill-child -- \
      /bin/sh -c '
        set -e
        hostname "$1"
        mount -t tmpfs -o mode=1777,size=1g "tmp-$1" /tmp
        mount -t tmpfs -o mode=1777,size=1g "shm-$1" /dev/shm
        mount --bind "$2" /etc/hosts
        echo $$ >"$3.tmp"
        mv "$3.tmp" "$3"
        [ -n "$4" ] || exec sleep infinity
        while kill -0 "$4" 2>/dev/null; do sleep 1; done' \
      sh "$host" "$etc_hosts" "$STATE/$host.pid" "$owner" \
      </dev/null >"$STATE/$host.log" 2>&1 &
    unshare_pid[$host]=$!
  done
  for host in $(hosts); do
    for i in $(seq 100); do
      [ -s "$STATE/$host.pid" ] && break
      kill -0 "${unshare_pid[$host]}" 2>/dev/null || break  # unshare failed
      sleep 0.05
    done
    if [ ! -s "$STATE/$host.pid" ]; then
      local why
      why=$(cat "$STATE/$host.log" 2>/dev/null)
      down || true
      die "could not create host $host with unshare (UTS, mount and IPC namespaces): ${why:-timed out}
This harness needs root with CAP_SYS_ADMIN and a kernel that allows namespaces
(a container may forbid unshare: EPERM). The multinode tests cannot run here."
    fi
    readlink "/proc/$(cat "$STATE/$host.pid")/ns/mnt" >"$STATE/$host.ns"
  done
  echo "multinode: up: $(hosts | tr '\n' ' ')(state in $STATE)" >&2
}

case $CMD in
  up) up "$@" ;;
  down) down ;;
  exec)
    [ $# -ge 2 ] || usage
    host=$1
    shift
    pid=$(holder_pid "$host")
    exec nsenter -t "$pid" --uts --mount --ipc --wd="$PWD" -- "$@"
    ;;
  list) hosts ;;
  *) usage ;;
esac
