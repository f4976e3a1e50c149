#!/usr/bin/env bash
# A single-node SLURM on this machine, from Debian's packages, for tests and a first try of
# `saftool run --executor slurm`: munge, slurmctld and slurmd started directly (no systemd), the
# node line from `slurmd -C`, no accounting database (saftool reads job states from
# squeue/scontrol, so it needs no sacct). Needs root and Debian/Ubuntu.
#
#   scripts/slurm-local.sh          # install what is missing, start the daemons, wait for an idle node
#   scripts/slurm-local.sh stop     # stop the daemons it started
#
# Safe to run again: a running, responding controller is left as it is.
set -euo pipefail

STATE=${SAFTOOL_SLURM_STATE:-/var/lib/saftool-slurm}
CONF=/etc/slurm/slurm.conf

stop() {
    for pidfile in "$STATE/slurmd.pid" "$STATE/slurmctld.pid" /run/munge/saftool-munged.pid; do
        [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
        rm -f "$pidfile"
    done
}

if [ "${1:-}" = "stop" ]; then
    stop
    exit 0
fi

if command -v scontrol >/dev/null && scontrol ping 2>/dev/null | grep -q UP \
    && sinfo -h -o %T 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; then
    echo "slurm-local: already running" >&2
    exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
    || ! command -v munged >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends munge slurmctld slurmd slurm-client >/dev/null
fi

mkdir -p "$STATE/ctld" "$STATE/d" /etc/slurm /run/munge
chown munge:munge /run/munge
[ -s /etc/munge/munge.key ] || { dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null; }
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key

node=$(slurmd -C | head -n 1)   # NodeName=... CPUs=... RealMemory=...
host=$(hostname -s)
cat > "$CONF" <<EOF
# written by saftool scripts/slurm-local.sh
ClusterName=saftool-local
SlurmctldHost=$host
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobRequeue=1
# finished jobs stay visible to scontrol for an hour (there is no accounting database)
MinJobAge=3600
KillWait=5
$node State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

stop
# munged runs as the munge user, so its pid file goes where that user may write
runuser -u munge -- munged --pid-file=/run/munge/saftool-munged.pid
slurmctld
slurmd

for _ in $(seq 1 60); do
    if sinfo -h -o %T 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; then
        echo "slurm-local: node $(sinfo -h -o %N) is up ($(sinfo -h -o %c) CPUs)" >&2
        exit 0
    fi
    sleep 0.5
done
echo "slurm-local: the node did not come up; see $STATE/slurmctld.log and $STATE/slurmd.log" >&2
exit 1
