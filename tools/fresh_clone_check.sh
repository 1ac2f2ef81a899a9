#!/usr/bin/env bash
# The README's two commands on a fresh clone, beside a competing CPU load of LOAD busy
# processes (tools/under_load.sh), as issue 27 asks:
#   1. `make book`, interrupted like Ctrl-C after INTERRUPT_AFTER seconds (default 240; 0
#      skips this step); then no process of it may be left running;
#   2. `make book` again: it must pass, going on from what was cached;
#   3. `make test`: every notebook executed once more, nothing stale rendered, pages checked.
# With ORDER=test-first: `make test`, then `make book` (which then executes nothing).
# COMMANDS="book" leaves out `make test` (COMMANDS="book test" by default).
#
#   tools/fresh_clone_check.sh [DIR]
#
# DIR (default: a new folder beside this checkout, so that ../shared/data is found) must
# not exist. SHARED_VENV=/path/to/.venv links an existing environment instead of creating
# one (then make runs with -o .venv/.installed and PYTHONPATH=DIR). Prints each step's time
# and the load average; exits non-zero at the first failure.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$(mktemp -u "$(dirname "$here")/fresh-clone.XXXX")}
LOAD=${LOAD:-2}
INTERRUPT_AFTER=${INTERRUPT_AFTER:-240}
ORDER=${ORDER:-book-first}
COMMANDS=${COMMANDS:-book test}
export LOAD

git clone -q "$here" "$dir"
cd "$dir"
make_args=()
if [ -n "${SHARED_VENV:-}" ]; then
    ln -s "$SHARED_VENV" .venv
    make_args=(-o .venv/.installed)
    export PYTHONPATH=$dir
fi
echo "fresh clone of $(git rev-parse --short HEAD) in $dir; load: $LOAD busy processes"

step() {  # step NAME COMMAND...: run under the load, print time and load average
    local name=$1
    shift
    echo "== $name"
    local start=$SECONDS
    if ! "$here/tools/under_load.sh" "$@"; then
        echo "== $name FAILED after $((SECONDS - start)) s"
        exit 1
    fi
    echo "== $name passed in $((SECONDS - start)) s; load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

leftovers() {  # processes still working in the clone (kernels run in book/), this script aside
    for proc in /proc/[0-9]*; do
        case "${proc#/proc/}" in "$$"|"$BASHPID") continue ;; esac
        cwd=$(readlink "$proc/cwd" 2>/dev/null) || continue
        case "$cwd" in "$dir"|"$dir"/*) echo "${proc#/proc/}" ;; esac
    done
}

interrupted_book() {
    echo "== make book, interrupted after $INTERRUPT_AFTER s"
    "$here/tools/under_load.sh" sleep $((INTERRUPT_AFTER + 30)) &
    local load=$!
    # in a script (no job control) the child is no group leader: setsid makes make the
    # leader of a new session and process group without forking, so $! is make's pid
    setsid make "${make_args[@]}" book &
    local book=$!
    sleep "$INTERRUPT_AFTER"
    kill -INT -- "-$book" 2>/dev/null || echo "== make book ended before the interrupt"
    wait "$book" || true
    kill "$load" 2>/dev/null || true
    wait "$load" || true
    sleep 2
    local left
    left=$(leftovers)
    if [ -n "$left" ]; then
        echo "== processes left running after the interrupt:"
        ps -o pid,args -p "$(echo "$left" | paste -sd,)" || true
        exit 1
    fi
    echo "== interrupted; no process left"
}

wanted() { case " $COMMANDS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
if [ "$ORDER" = test-first ]; then
    if wanted test; then step "make test" make "${make_args[@]}" test; fi
    if wanted book; then step "make book" make "${make_args[@]}" book; fi
else
    if wanted book && [ "$INTERRUPT_AFTER" -gt 0 ]; then
        interrupted_book
    fi
    if wanted book; then step "make book" make "${make_args[@]}" book; fi
    if wanted test; then step "make test" make "${make_args[@]}" test; fi
fi
echo "fresh_clone_check: all passed in $dir"
