# SPDX-License-Identifier: Apache-2.0
# tests/lib/port.sh: a free TCP port on 127.0.0.1 for a test's service (source it).
#
#   p=$(free_port) || ...   # a port nobody listens on, below the kernel's ephemeral range
#
# Below the ephemeral range (net.ipv4.ip_local_port_range, 32768-60999 by default) because a
# port in it can be nobody's listener and still not bindable: the source port of a connection,
# or one of the thousands in TIME_WAIT a CI run's loopback traffic leaves (anvil failed with
# "Address already in use" on five random ports in a row that way). A listener can still take
# the port between this check and the bind: callers retry with another.

free_port() {
    local lo=32768 p
    read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
    [ "$lo" -gt 11024 ] || lo=32768
    for _ in $(seq 100); do
        p=$((10000 + RANDOM % (lo - 10000)))
        (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo "$p"; return 0; }
    done
    return 1
}
