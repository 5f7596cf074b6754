#!/bin/sh
# Guardian's per-host premarket job as one POSIX shell script (for the OpenSSH and pyinfra peers).
#
# Usage: peer_job.sh MANAGER SETTLE TAR_DEST [PID_DIR]
#   MANAGER   supervisor | process-compose | signal
#   SETTLE    seconds to wait before re-checking
#   TAR_DEST  "-" streams a tar of the collected logs to stdout; else a path on the host
#   PID_DIR   where the app's daemons write their pid files, relative to the app (default state)
# Steps: check; remove stale locks; UW lines -> restart uw-daemon; SIP lines -> alert file and
# restart trading-bot (a restart waits for a new live pid); settle; re-check; collect logs.
# Exit code: the final check's (0 healthy).
set -u
MANAGER=$1
SETTLE=$2
TAR_DEST=$3
PID_DIR=${4:-state}
APP=/root/stock-bot
PY=/usr/bin/python3
cd "$APP" || exit 3
mkdir -p logs state
LOG=logs/guardian.log
OUT=logs/guardian_pre_market_health_check_output.log
RETRY=logs/guardian_retry_pre_market_health_check.log

log() { printf '[%s] %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$*" >>"$LOG"; }

pidfile_of() {
    case $1 in
        uw-daemon) echo "$PID_DIR/uw_flow_daemon.pid" ;;
        trading-bot) echo "$PID_DIR/main.pid" ;;
    esac
}

restart() {
    pf=$(pidfile_of "$1")
    old=$(head -n1 "$pf" 2>/dev/null)
    case $MANAGER in
        supervisor) supervisorctl restart "$1" >/dev/null 2>&1 ;;
        process-compose) /usr/local/bin/process-compose process restart "$1" >/dev/null 2>&1 ;;
        signal) [ -n "$old" ] && kill -TERM "$old" 2>/dev/null ;;
    esac
    i=0
    while [ $i -lt 200 ]; do
        new=$(head -n1 "$pf" 2>/dev/null)
        if [ -n "$new" ] && [ "$new" != "$old" ] && kill -0 "$new" 2>/dev/null; then
            log "Restarted $1 via $MANAGER: pid $old -> $new"
            return 0
        fi
        sleep 0.1
        i=$((i + 1))
    done
    log "ERROR: $1 did not come back with a new pid"
    return 1
}

log "peer job starting"
$PY pre_market_health_check.py >"$OUT" 2>&1
rc=$?
log "pre_market_health_check.py exit code $rc"
if [ "$rc" -ne 0 ]; then
    now=$(date +%s)
    for f in state/*.lock; do
        [ -f "$f" ] && [ ! -L "$f" ] || continue
        pid=$(head -n1 "$f" | tr -dc '0-9')
        if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
            if [ $((now - $(stat -c %Y "$f"))) -ge 3600 ]; then
                rm -f -- "$f" && log "Cleared stale lock $f"
            fi
        fi
    done
    if grep -Eiq 'connection_error|timeout|UW.*fail|socket.*fail' "$OUT"; then
        restart uw-daemon
    fi
    if grep -Eiq 'SIP.*delay|sip_feed.*error|sip_feed.*no_data' "$OUT"; then
        alert="logs/alpaca_sip_alert_$(date +%Y%m%d_%H%M%S).txt"
        printf 'CRITICAL ALERT: alpaca_sip\nHost: %s\nTime: %s\n' "$(hostname)" "$(date -u +%FT%TZ)" >"$alert"
        log "CRITICAL: wrote alert $alert"
        restart trading-bot
    fi
    log "Waiting ${SETTLE}s for stabilization"
    sleep "$SETTLE"
    $PY pre_market_health_check.py >"$RETRY" 2>&1
    rc=$?
    log "Re-verification exit code $rc"
fi
names="guardian.log $(basename "$OUT")"
[ -f "$RETRY" ] && names="$names $(basename "$RETRY")"
for a in logs/*_alert_*.txt; do [ -f "$a" ] && names="$names $(basename "$a")"; done
# shellcheck disable=SC2086 # word splitting of the plain file names is intended
if [ "$TAR_DEST" = "-" ]; then
    tar cf - -C logs $names
else
    tar cf "$TAR_DEST" -C logs $names
fi
exit "$rc"
