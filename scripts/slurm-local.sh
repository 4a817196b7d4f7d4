#!/usr/bin/env bash
# A private single-node SLURM in one folder, for the SLURM executor's tests and for trying
# `zipper ablate --executor slurm` on one machine (facts in ../shared/CLUSTER.md). Needs root and
# Debian's slurm-wlm and munge packages (`apt-get install -y --no-install-recommends slurm-wlm munge`).
#
#   scripts/slurm-local.sh start DIR   config, state and logs under DIR; prints the SLURM_CONF to export
#   scripts/slurm-local.sh stop DIR    cancels every job, stops the daemons started by `start DIR`
#
# Nothing under /etc/slurm is touched: clients find this cluster through SLURM_CONF=DIR/slurm.conf.
# The daemons run in the background under start-stop-daemon with known PID files, so a caller never
# hangs on an inherited pipe; stop them whatever happens (a trap, a test's after hook).
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
conf=$dir/slurm.conf
node=$(hostname -s)

stop_daemon() { # name
  local pid=$dir/run/$1.pid
  [ -f "$pid" ] || return 0
  start-stop-daemon --stop --quiet --pidfile "$pid" --retry TERM/10/KILL/5 >/dev/null 2>&1 || true
  rm -f "$pid"
}

case "$cmd" in
start)
  [ "$(id -u)" = 0 ] || { echo "$0: starting slurmd needs root" >&2; exit 1; }
  for b in munged mungekey slurmctld slurmd sinfo start-stop-daemon; do
    command -v "$b" >/dev/null || { echo "$0: $b not found (apt-get install -y --no-install-recommends slurm-wlm munge)" >&2; exit 1; }
  done
  for port in 6817 6818; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$0: port $port is taken (another slurmctld/slurmd running?); stop it first" >&2; exit 1
    fi
  done
  mkdir -p "$dir/state" "$dir/spool" "$dir/run" "$dir/log"
  # munge: one per machine; start it only when none answers.
  if ! munge -n </dev/null >/dev/null 2>&1; then
    install -d -o munge -g munge -m 0755 /run/munge
    [ -f /etc/munge/munge.key ] || mungekey --create >/dev/null
    start-stop-daemon --start --quiet --background --make-pidfile --pidfile "$dir/run/munged.pid" \
      --chuid munge --output "$dir/log/munged.log" --exec /usr/sbin/munged -- -F
    for _ in $(seq 50); do munge -n </dev/null >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  # Hardware as slurmd sees it, with RealMemory a little below what it detects.
  read -r cpus mem < <(slurmd -C | sed -n 's/.*CPUs=\([0-9]*\).*RealMemory=\([0-9]*\).*/\1 \2/p')
  cat >"$conf" <<EOF
ClusterName=zipper-local
SlurmctldHost=$node(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.own.pid
SlurmdPidFile=$dir/run/slurmd.own.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerParameters=batch_sched_delay=0
EnforcePartLimits=ALL
DependencyParameters=kill_invalid_depend
ReturnToService=2
MailProg=/bin/true
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$((mem - 512)) State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF=$conf
  start-stop-daemon --start --quiet --background --make-pidfile --pidfile "$dir/run/slurmctld.pid" \
    --output "$dir/log/slurmctld.out" --exec "$(command -v slurmctld)" -- -D -c -f "$conf"
  start-stop-daemon --start --quiet --background --make-pidfile --pidfile "$dir/run/slurmd.pid" \
    --output "$dir/log/slurmd.out" --exec "$(command -v slurmd)" -- -D -f "$conf"
  for _ in $(seq 300); do
    state=$(sinfo -h -N -o %T 2>/dev/null | head -n 1 || true)
    [ "$state" = idle ] && { echo "SLURM_CONF=$conf"; exit 0; }
    sleep 0.1
  done
  echo "$0: the node did not become idle in 30 s (state: ${state:-none}); logs in $dir/log" >&2
  "$0" stop "$dir"
  exit 1
  ;;
stop)
  if [ -f "$conf" ] && [ -f "$dir/run/slurmctld.pid" ]; then
    jobs=$(SLURM_CONF=$conf squeue -h -o %F 2>/dev/null | sort -u || true)
    [ -z "$jobs" ] || SLURM_CONF=$conf scancel --full $jobs >/dev/null 2>&1 || true
  fi
  stop_daemon slurmd
  stop_daemon slurmctld
  stop_daemon munged
  ;;
*)
  echo "usage: $0 start|stop DIR" >&2; exit 2
  ;;
esac
