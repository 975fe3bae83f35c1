# SPDX-License-Identifier: Apache-2.0
# tests/lib/chromium.sh: the dashboard as a browser shows it, through headless Debian chromium
# (scripts/install-deps test installs the package). Used by tests/it_api.sh and scripts/demo.
#
#   . tests/lib/chromium.sh
#   chromium_find || ...            # sets CHROMIUM (the binary); fails when there is none
#   chromium_load DIR URL ARGS...   # loads URL with its scripts run (8 s of virtual time);
#                                   # ARGS: --dump-dom (the DOM on stdout), --screenshot=F
#   python3 tests/lib/dashboard_rows.py FILE   # the event rows of a dumped event list (JSON)
#   python3 tests/lib/dashboard_click.py ...   # clicks a button, prints what the page shows
#
# DIR holds the browser's profile and its log (DIR/chromium.log). Nothing leaves 127.0.0.1:
# background networking, component updates and sync are off.

chromium_find() {
    CHROMIUM=$(command -v chromium || command -v chromium-browser) || CHROMIUM=
    [ -n "$CHROMIUM" ]
}

chromium_load() {
    local dir=${1:?usage: chromium_load DIR URL ARGS...} url=${2:?usage: chromium_load DIR URL ARGS...}
    shift 2
    [ -n "${CHROMIUM:-}" ] || chromium_find || { echo "chromium.sh: no chromium" >&2; return 1; }
    mkdir -p "$dir" || return 1
    "$CHROMIUM" --headless=new --no-sandbox --disable-gpu --no-first-run --disable-sync \
        --disable-background-networking --disable-component-update --disable-default-apps \
        --disable-extensions --user-data-dir="$dir/profile" --virtual-time-budget=8000 \
        --window-size=1280,900 "$@" "$url" 2>>"$dir/chromium.log"
}
