# SPDX-License-Identifier: Apache-2.0
# check.sh: the assertions of the bash integration tests (source it). Each check prints
# `ok NAME` or `FAIL NAME: why`; check_done prints the closing `N passed, N failed` and
# returns non-zero when anything failed. Commands run by expect write to $tmp/out and $tmp/err,
# so the caller sets $tmp (a scratch directory) first.
passed=0 failed=0

ok() { echo "ok $1"; passed=$((passed + 1)); }
fail() { echo "FAIL $1: $2"; failed=$((failed + 1)); }

# expect NAME STATUS CMD...: runs CMD, stdout in $tmp/out, stderr in $tmp/err, checks status;
# reports only a failure (the caller reports success, usually with has).
expect() {
    local name=$1 want=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    if [ "$got" -ne "$want" ]; then
        fail "$name" "exit $got, want $want; stderr: $(head -c 600 "$tmp/err")"
        return 1
    fi
    return 0
}

# has NAME FILE PATTERN: FILE contains the fixed string PATTERN.
has() {
    if grep -qF -- "$3" "$2"; then ok "$1"; else fail "$1" "no '$3' in: $(head -c 600 "$2")"; fi
}

# wait_until DESC CMD...: polls CMD every 0.1 s until it succeeds, at most 600 times (a bound
# against a hang, not a timing check); says what it gave up on.
wait_until() {
    local desc=$1 i
    shift
    for i in $(seq 1 600); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "  gave up waiting: $desc" >&2
    return 1
}

check_done() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
