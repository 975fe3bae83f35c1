/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lb_front: the load balancer as the daemon sets it up, for bench/lb.sh: HAProxy started by
 * ocra_lb_open() in DIR with one frontend port, the replicas at 127.0.0.1:PORT.. added as the
 * daemon adds them (enabled once they accept), then it waits for its standard input to close
 * and stops HAProxy by its pid. Prints "ready" once every server is enabled.
 * Usage: bench_lb_front DIR FRONT_PORT REPLICA_PORT...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb/lb.h"

int
main(int argc, char **argv)
{
    struct ocra_lb_conf c = {
        .haproxy = "/usr/sbin/haproxy", .socket = "", .bind = "127.0.0.1", .check_inter_ms = 2000};
    struct ocra_err err = {0};
    struct ocra_lb *lb = NULL;
    int64_t fport, sport;
    int port = 0, ret = 1;
    char line[64];

    if (argc < 4 || ocra_parse_i64(argv[2], 1, 65535, &fport, &err) < 0) {
        fprintf(stderr, "usage: bench_lb_front DIR FRONT_PORT REPLICA_PORT...\n");
        return 2;
    }
    c.dir = argv[1];
    c.port_min = c.port_max = (int)fport;
    if (!(lb = ocra_lb_open(&c, &err)) || ocra_lb_frontend(lb, "bench", &port, &err) < 0)
        goto out;
    for (int i = 3; i < argc; i++) {
        if (ocra_parse_i64(argv[i], 1, 65535, &sport, &err) < 0 ||
            ocra_lb_server_up(lb, port, argv[i], "127.0.0.1", (int)sport, 10000, NULL, &err) < 0)
            goto out;
    }
    printf("ready\n");
    fflush(stdout);
    while (fgets(line, sizeof(line), stdin))
        ;
    ret = 0;
out:
    if (ret)
        fprintf(stderr, "bench_lb_front: %s\n", err.msg);
    ocra_lb_close(lb, true);
    return ret;
}
