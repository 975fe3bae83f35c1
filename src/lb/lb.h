/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lb.h: the load balancer of served models: HAProxy, driven through its Runtime API (the admin
 * socket, `stats socket ... level admin`). Each served model gets one stable frontend, a port of
 * lb.port_min..lb.port_max: the HAProxy section `ocra_<port>` (a `listen` that binds the port)
 * whose servers are the model's replicas, each named as its container (ocra-<short id>[-r<N>]),
 * so the replicas of two versions of one model can share the frontend during a switch. HAProxy 2.6
 * adds servers at run time but no sections, so every port of the range has its section from the
 * start, empty until a model takes it. ocra either starts its own HAProxy (lb.haproxy) from a
 * generated configuration in lb.dir, or attaches to an operator's (lb.socket), whose configuration
 * must hold the same sections (`ocra_lb_config_text` prints them).
 */
#ifndef OCRA_LB_H
#define OCRA_LB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

#define OCRA_LB_NAME_MAX 64 /* a section or server name, NUL included */

/* What the daemon's configuration says of the load balancer (borrowed strings). */
struct ocra_lb_conf {
    const char *haproxy; /* the binary to start; "" when attaching */
    const char *socket;  /* an operator's admin socket to attach to; "" when starting */
    const char *dir;     /* state: haproxy.cfg, haproxy.pid, admin.sock, frontends */
    const char *bind;    /* the address the frontends bind */
    int port_min, port_max;
    int check_inter_ms; /* HAProxy's health checks of each server */
};

/* ---- the Runtime API: commands and replies (pure; lb_parse.c) ---------------------------- */

enum ocra_lb_op {
    OCRA_LB_ADD,    /* add server <sec>/<srv> <addr>:<port> check inter <ms> */
    OCRA_LB_HEALTH, /* enable health <sec>/<srv>: a dynamic server's checks start disabled */
    OCRA_LB_ENABLE, /* enable server <sec>/<srv> */
    OCRA_LB_DRAIN,  /* set server <sec>/<srv> state drain */
    OCRA_LB_MAINT,  /* set server <sec>/<srv> state maint */
    OCRA_LB_DEL,    /* del server <sec>/<srv> */
};

/* One command line (no newline) into buf[cap]: section and server names of [A-Za-z0-9_.-] only,
 * addr an IPv4 or IPv6 literal. -1 with EINVAL naming the bad part, ENOSPC when cap is short. */
int ocra_lb_cmd(char *buf, size_t cap, enum ocra_lb_op op, const char *section, const char *server,
                const char *addr, int port, int inter_ms, struct ocra_err *err);

/* Whether a Runtime API reply to a server command says it failed: the empty reply and the
 * known success lines are fine; anything else is HAProxy's error text. */
bool ocra_lb_reply_failed(const char *reply);

/* One row of `show stat` (a server, or the section's FRONTEND/BACKEND). Counts -1: empty. */
struct ocra_lb_stat {
    char section[OCRA_LB_NAME_MAX];
    char server[OCRA_LB_NAME_MAX];
    char status[24]; /* UP, DOWN, DRAIN, MAINT, "UP 1/3", no check ... */
    int64_t qcur, scur, stot, hrsp_2xx, hrsp_5xx;
};

/*
 * Parses the CSV of `show stat`: a header line "# pxname,svname,..." naming the columns, then
 * one row per line; the columns are found by name (their order is HAProxy's business). Rows
 * whose names are too long or whose counts are not numbers are an EPROTO error. *rows: caller
 * frees with free().
 */
int ocra_lb_stat_parse(const char *text, size_t len, struct ocra_lb_stat **rows, size_t *n,
                       struct ocra_err *err);

/* Requests of one event in HAProxy: the sessions and queued requests (scur + qcur) of the
 * servers in rows named `prefix` or `prefix`-r<N> (an event's container names). */
int64_t ocra_lb_load(const struct ocra_lb_stat *rows, size_t n, const char *prefix);

/* The frontends file: one "<port> <model key>" per line (the key is the rest of the line, its
 * blanks included). Lines that do not parse and ports out of [1, 65535] are an EPROTO error
 * naming the line. Caller frees *ports
 * with free() and *ids with ocra_strv_free-like loops (each free(), then the array). */
int ocra_lb_frontends_parse(const char *text, int **ports, char ***ids, size_t *n,
                            struct ocra_err *err);

/* HAProxy's configuration for c: the admin socket in c->dir, one `listen ocra_<port>` per port.
 * Caller frees with free(). */
char *ocra_lb_config_text(const struct ocra_lb_conf *c, const char *socket);

/* ---- HAProxy itself (lb.c) ---------------------------------------------------------------- */

struct ocra_lb;

/*
 * Starts HAProxy (c->haproxy) with the generated configuration, or adopts the one a previous
 * daemon started (its pid file names a live process whose admin socket answers), or attaches
 * to c->socket. Returns the handle; caller frees with ocra_lb_close().
 */
struct ocra_lb *ocra_lb_open(const struct ocra_lb_conf *c, struct ocra_err *err);
/* Stops the HAProxy this handle started or adopted (SIGTERM by its pid; an attached one is
 * left alone) when stop, and frees lb. NULL is a no-op. */
void ocra_lb_close(struct ocra_lb *lb, bool stop);
/* The pid of the HAProxy lb owns; 0 when attached. */
int64_t ocra_lb_pid(const struct ocra_lb *lb);

/* One Runtime API command; *reply: caller frees with free(). */
int ocra_lb_call(struct ocra_lb *lb, const char *cmd, char **reply, struct ocra_err *err);

/* The frontend port of a model (key: any text without a newline; the daemon's is the
 * journal's model key, so every version of a model has the same port): the one it has, else
 * the lowest free one of the range (kept in the frontends file, so it stays across restarts).
 * EAGAIN when every port is taken. */
int ocra_lb_frontend(struct ocra_lb *lb, const char *key, int *port, struct ocra_err *err);
/* The port key has (0: none), without taking one. */
int ocra_lb_frontend_find(struct ocra_lb *lb, const char *key);
/* The port key holds in the frontends file of dir (a reader beside the daemon: the API,
 * `ocra lineage`): 0 when none or when the file does not exist; -1 with err when it does not
 * parse. */
int ocra_lb_frontend_lookup(const char *dir, const char *key, struct ocra_err *err);
/* Gives key's port back (its servers must be gone). */
int ocra_lb_frontend_release(struct ocra_lb *lb, const char *key, struct ocra_err *err);

/*
 * The server `name` ([A-Za-z0-9_.-]; the daemon's: the replica's container name) of the
 * frontend at port, at addr:sport: added (in maintenance) unless it is there, then enabled once
 * addr:sport accepts a TCP connection (wait_ms at most, 0: one try; else ETIMEDOUT), HAProxy's
 * checks on it. One drained and not forgotten since is left out (0). *enabled (may be NULL):
 * it was enabled by this call.
 */
int ocra_lb_server_up(struct ocra_lb *lb, int port, const char *name, const char *addr, int sport,
                      int wait_ms, bool *enabled, struct ocra_err *err);
/* Servers drained by ocra_lb_server_down() are not added again by ocra_lb_server_up() (a
 * stopping replica is not put back in rotation) until forgotten here: the server `prefix`
 * when whole, else every server whose name starts with it. */
void ocra_lb_server_forget(struct ocra_lb *lb, const char *prefix, bool whole);
/* The server `name`, in whichever frontend has it, set to drain (no new requests), waited for
 * until its sessions and queue reach 0 or wait_ms passed, then put in maintenance and deleted.
 * A missing one is fine. *port (may be NULL): its frontend port, 0 when it was missing. */
int ocra_lb_server_down(struct ocra_lb *lb, const char *name, int wait_ms, int *port,
                        struct ocra_err *err);
/* `show stat` of the section at port (port 0: every section). *rows: caller frees. */
int ocra_lb_stat(struct ocra_lb *lb, int port, struct ocra_lb_stat **rows, size_t *n,
                 struct ocra_err *err);

#endif
