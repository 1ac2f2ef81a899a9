#!/usr/bin/env bash
# Run a command while LOAD other processes keep the CPU busy (default 2), as on a shared
# machine or a laptop doing something else; print the command's time and the load average.
#
#   tools/under_load.sh make book
#   LOAD=3 tools/under_load.sh make test
#
# The load is Debian's stress-ng when it is installed (`apt-get install stress-ng`), else a
# busy loop in Python. It is stopped when the command ends, fails or is interrupted. The
# exit status is the command's.
set -uo pipefail
LOAD=${LOAD:-2}
if [ $# -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

pids=()
stop_load() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
    pids=()
}
trap stop_load EXIT
trap 'stop_load; exit 130' INT
trap 'stop_load; exit 143' TERM

if command -v stress-ng >/dev/null 2>&1; then
    stress-ng --cpu "$LOAD" --cpu-method matrixprod --quiet &
    pids+=($!)
    how="stress-ng --cpu $LOAD"
else
    for _ in $(seq "$LOAD"); do
        python3 -c "while True: pass" &
        pids+=($!)
    done
    how="$LOAD python3 busy loops"
fi
echo "under_load: $how running beside: $*"
start=$(date +%s)
"$@"
rc=$?
end=$(date +%s)
echo "under_load: '$*' exited $rc after $((end - start)) s; load average $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$rc"
