#!/bin/bash
# Plain parallel OpenSSH peer: one ssh per host runs peer_job.sh (fed on stdin) and streams
# one tar of the collected logs back.
# Usage: ssh_fanout.sh HOSTS_FILE KEY KNOWN_HOSTS OUT_DIR SETTLE [PID_DIR]
#   HOSTS_FILE lines: NAME ADDRESS PORT MANAGER
# Writes OUT_DIR/NAME.tar, NAME.err and NAME.rc (the job's exit code); exits 0 if all are 0.
set -u
hosts_file=$1 key=$2 known_hosts=$3 out=$4 settle=$5 pid_dir=${6:-state}
job="$(dirname "$0")/peer_job.sh"
mkdir -p "$out"
while read -r name addr port manager; do
    (
        ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes \
            -o UserKnownHostsFile="$known_hosts" -o IdentitiesOnly=yes -o ConnectTimeout=10 \
            -i "$key" -p "$port" "root@$addr" "sh -s -- $manager $settle - $pid_dir" \
            <"$job" >"$out/$name.tar" 2>"$out/$name.err"
        echo $? >"$out/$name.rc"
    ) &
done <"$hosts_file"
wait
! grep -qv '^0$' "$out"/*.rc
