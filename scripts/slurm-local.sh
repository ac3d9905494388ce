#!/usr/bin/env bash
# A real single-node SLURM cluster on localhost (Debian's packages, no systemd), for the tests and
# for trying scaling-sweep's SLURM launcher on one machine. Run as root.
#
#   scripts/slurm-local.sh install   apt packages: slurmctld slurmd slurm-client munge slurmdbd mariadb-server
#   scripts/slurm-local.sh start     munged, MariaDB (socket only), slurmdbd, slurmctld, slurmd; waits until idle
#   scripts/slurm-local.sh stop      cancels every job and stops the daemons
#   scripts/slurm-local.sh status    sinfo and the daemons' pids
#
# Facts this relies on (Debian 12, SLURM 22.05): auth is munge (no auth/slurm); accounting through
# slurmdbd is needed, or sacct fails and submitit sees every job as UNKNOWN; the node is called
# localhost whatever the hostname is; advertising 4 CPUs on a 2-core machine lets four 1-CPU jobs
# run at once; cgroup v1 enforces memory limits and pins cores.
set -euo pipefail

CPUS=${SLURM_LOCAL_CPUS:-4}
LOG_DIR=/var/log/slurm
STATE_DIR=/var/spool/slurm-local
PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)

say() { echo "slurm-local: $*"; }

install() {
  if command -v slurmctld >/dev/null && command -v slurmdbd >/dev/null && command -v mariadbd >/dev/null \
    && command -v munged >/dev/null && command -v sbatch >/dev/null; then
    say "packages already installed"
    return
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Post-install scripts try to start services and cannot (no systemd): that is expected.
  apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null || true
  command -v slurmctld >/dev/null || { say "apt could not install ${PACKAGES[*]}"; exit 1; }
}

write_config() {
  local memory
  memory=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
  memory=$((memory * 9 / 10))
  mkdir -p /etc/slurm "$LOG_DIR" "$STATE_DIR/ctld" "$STATE_DIR/d"
  cat >/etc/slurm/slurm.conf <<EOF
ClusterName=local
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/cgroup
TaskPlugin=task/cgroup,task/affinity
ReturnToService=2
JobRequeue=1
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmdSpoolDir=$STATE_DIR/d
StateSaveLocation=$STATE_DIR/ctld
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmctldParameters=preempt_send_user_signal
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/cgroup
JobAcctGatherFrequency=5
MinJobAge=300
KillWait=10
InactiveLimit=0
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  cat >/etc/slurm/cgroup.conf <<EOF
CgroupAutomount=yes
ConstrainCores=yes
ConstrainRAMSpace=yes
EOF
  cat >/etc/slurm/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
LogFile=$LOG_DIR/slurmdbd.log
PidFile=/run/slurmdbd.pid
EOF
  chmod 600 /etc/slurm/slurmdbd.conf
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2
  shift 2
  for _ in $(seq $((seconds * 4))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  say "timed out waiting for $what"
  tail -n 20 "$LOG_DIR"/*.log 2>/dev/null || true
  exit 1
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  install
  write_config
  mkdir -p /run/munge && chown munge:munge /run/munge
  if ! pgrep -x munged >/dev/null; then
    runuser -u munge -- /usr/sbin/munged --force
  fi
  wait_for 10 munged munge -n

  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  if ! pgrep -x mariadbd >/dev/null; then
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null
    (mariadbd --user=mysql --skip-networking --socket=/run/mysqld/mysqld.sock \
      --pid-file=/run/mysqld/mysqld.pid >>"$LOG_DIR/mariadb.log" 2>&1 &)
  fi
  wait_for 30 MariaDB mariadb-admin --socket=/run/mysqld/mysqld.sock ping

  running /run/slurmdbd.pid || slurmdbd
  wait_for 30 slurmdbd sacctmgr -n list cluster
  sacctmgr -i add cluster local >/dev/null 2>&1 || true  # exit 1 when it exists

  running /run/slurmctld.pid || slurmctld
  running /run/slurmd.pid || slurmd -N localhost
  wait_for 30 "an idle node" sh -c 'sinfo -h -N -o %t | grep -qE "^(idle|mix|alloc)"'
  say "up: $(sinfo -h -N -o '%N %t %c CPUs %m MB')"
}

stop() {
  scancel --full --quiet --user root 2>/dev/null || true
  for pidfile in /run/slurmd.pid /run/slurmctld.pid /run/slurmdbd.pid; do
    if running "$pidfile"; then kill "$(cat "$pidfile")" 2>/dev/null || true; fi
  done
  pkill -x slurmstepd 2>/dev/null || true
  if pgrep -x mariadbd >/dev/null; then
    mariadb-admin --socket=/run/mysqld/mysqld.sock shutdown 2>/dev/null || pkill -x mariadbd || true
  fi
  pkill -x munged 2>/dev/null || true
  for _ in $(seq 40); do
    alive=0
    for daemon in slurmd slurmctld slurmdbd mariadbd munged; do
      pgrep -x "$daemon" >/dev/null && alive=1
    done
    [ "$alive" = 0 ] && break
    sleep 0.25
  done
  say "stopped"
}

status() {
  for daemon in munged mariadbd slurmdbd slurmctld slurmd; do
    printf '%-10s %s\n' "$daemon" "$(pgrep -x "$daemon" | tr '\n' ' ' || true)"
  done
  sinfo 2>/dev/null || say "slurmctld is not answering"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
