/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agentd: the daemon's side of the ocra-agent protocol (docs/AGENT.md). A unix stream socket
 * server, run by one thread of its own with a poll loop, that the in-image agent of every
 * workload talks to: it answers "is this model version still the current one?" through a
 * callback of the daemon, and hands the started, heartbeat and completed reports to another.
 * Each run (an event's replica) has a listening socket of its own, in a directory of its own
 * that only that run's container gets bind-mounted, so the server knows who is talking: a
 * message that names another event is refused. One JSON object per line each way; everything
 * that arrives is hostile: lines are bounded, parsed strictly, every field is checked against
 * its grammar and bounds, each connection has an idle deadline, and the number of connections
 * is capped per run and in all.
 */
#ifndef OCRA_AGENTD_H
#define OCRA_AGENTD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/base.h"

#define OCRA_AGENTD_PROTO 1         /* the protocol version, member "v" of every message */
#define OCRA_AGENTD_LINE_MAX 4096   /* a request line, newline included */
#define OCRA_AGENTD_REPLY_MAX 1024  /* a reply line, newline included (the agent's bound) */
#define OCRA_AGENTD_EVENT_MAX 512   /* an event id, in bytes (as OCRA_RUN_EVENT_MAX) */
#define OCRA_AGENTD_MODEL_MAX 128   /* a model name: [a-z0-9][a-z0-9._-]{0,127} */
#define OCRA_AGENTD_VERSION_MAX 64  /* a model version: printable ASCII, no space */
#define OCRA_AGENTD_INSTANCE_MAX 64 /* the agent's instance id: [A-Za-z0-9_-] */
#define OCRA_AGENTD_HOST_MAX 64     /* the container's host name: printable ASCII, no space */
#define OCRA_AGENTD_HEARTBEAT_S 10  /* default heartbeat interval told to the agents */
#define OCRA_AGENTD_HEARTBEAT_MAX_S 3600
#define OCRA_AGENTD_LOAD_MAX 1000000000LL /* a heartbeat's "load" */
#define OCRA_AGENTD_MAX_CONNS 4096        /* default cap on open connections, all runs */
#define OCRA_AGENTD_RUN_CONNS 4           /* default cap on one run's open connections */
#define OCRA_AGENTD_NAME_MAX 32           /* default: the longest run name, in bytes */
#define OCRA_AGENTD_IDLE_MS 10000         /* default: a connection idle this long is closed */
#define OCRA_AGENTD_SOCKET_NAME "agent.sock"

/* ---- messages ---------------------------------------------------------------------- */

enum ocra_agentd_type {
    OCRA_AGENTD_CHECK,     /* "check": is this version current? (answered by cb.check) */
    OCRA_AGENTD_STARTED,   /* "started": the workload runs */
    OCRA_AGENTD_HEARTBEAT, /* "heartbeat": the agent and its workload are alive */
    OCRA_AGENTD_COMPLETED, /* "completed": the workload ended */
    OCRA_AGENTD_REFUSED,   /* "refused": the agent will not start the workload (reason) and
                              exits 75 after the reply */
};

/*
 * One request from an agent, validated. Every string is NUL-terminated, within its bound and
 * of its grammar (docs/AGENT.md); numbers are within their ranges; members a type does not
 * carry are 0, false or "".
 */
struct ocra_agentd_msg {
    enum ocra_agentd_type type;
    char event[OCRA_AGENTD_EVENT_MAX + 1];       /* the event id the image was built for */
    char model[OCRA_AGENTD_MODEL_MAX + 1];       /* the model name */
    char version[OCRA_AGENTD_VERSION_MAX + 1];   /* the model version of the image */
    char instance[OCRA_AGENTD_INSTANCE_MAX + 1]; /* random per agent run: tells replicas apart */
    char host[OCRA_AGENTD_HOST_MAX + 1];         /* container host name (docker: short id), or "" */
    int64_t time_ms;     /* the agent's wall clock, ms since the epoch (0 < t < 2^47) */
    int64_t pid;         /* started: the workload's pid inside the container (> 0) */
    bool forced;         /* started: it runs although the daemon said superseded */
    int64_t uptime_ms;   /* heartbeat: time since the workload started (>= 0) */
    bool has_load;       /* heartbeat: the optional "load" member was present */
    int64_t load;        /* heartbeat: requests in flight + queued (0..OCRA_AGENTD_LOAD_MAX) */
    int64_t duration_ms; /* completed: how long the workload ran (>= 0) */
    int exit_code;       /* completed: 0..255 when it exited, -1 when a signal ended it */
    int signal;          /* completed: the signal that ended it (1..64), 0 when it exited */
    char reason[16];     /* refused: why, "superseded" (a newer version is current) */
    char current[OCRA_AGENTD_VERSION_MAX + 1]; /* refused: the current version, or "" */
};

/* "check", "started", ...; NULL for a value outside the enum. */
const char *ocra_agentd_type_name(enum ocra_agentd_type type);

/*
 * Parses and validates one request line (len bytes, without its newline; any bytes). Unknown
 * members are ignored; a duplicate member, a wrong type, a missing member or a value out of
 * its bound fails with EPROTO and a message naming the member (values quoted with
 * ocra_str_escape). On success fills *out; on failure *out is unspecified.
 */
int ocra_agentd_msg_parse(const char *line, size_t len, struct ocra_agentd_msg *out,
                          struct ocra_err *err);

/* ---- the server -------------------------------------------------------------------- */

/*
 * Who is talking. The peer process, from SO_PEERCRED: its pid in the daemon's pid namespace
 * (so the daemon can tell which container it is in through /proc/<pid>/cgroup), its uid and
 * gid; and the run whose socket it reached (ocra_agentd_run_add), which the server trusts
 * over anything the message says: msg->event is always that run's event.
 */
struct ocra_agentd_peer {
    pid_t pid;
    uid_t uid;
    gid_t gid;
    const char *run; /* the run's name (its directory's) */
    int replica;     /* the run's replica */
};

enum ocra_agentd_verdict {
    OCRA_AGENTD_CURRENT,    /* the newest version of the model on-chain: run */
    OCRA_AGENTD_SUPERSEDED, /* a newer version exists (answer.current): refuse unless forced */
    OCRA_AGENTD_UNKNOWN,    /* the daemon does not know this event or model: run, with a warning */
};

/* What the check callback answers. */
struct ocra_agentd_answer {
    enum ocra_agentd_verdict verdict;
    /* superseded: the current version (printable ASCII, no space, at most
     * OCRA_AGENTD_VERSION_MAX bytes; anything else is sent as ""). */
    char current[OCRA_AGENTD_VERSION_MAX + 1];
};

/*
 * The daemon's callbacks. Both are called from the server thread, one call at a time, and
 * must not block for long (every agent waits while they run): answer from memory or one
 * journal read. They must not call ocra_agentd_stop(). msg and peer are borrowed for the call
 * only.
 */
struct ocra_agentd_callbacks {
    /* Answers a check; *answer comes zeroed (current). Returns 0, or -1 to make the agent
     * treat the daemon as unable to answer (it then runs the workload, with a warning). */
    int (*check)(void *arg, const struct ocra_agentd_msg *msg, const struct ocra_agentd_peer *peer,
                 struct ocra_agentd_answer *answer);
    /* Receives a started, heartbeat, completed or refused report. Reports are not retried by the
     * agent, and an agent that cannot reach the daemon gives up quietly: a missing report
     * proves nothing, and the runner's exit status of the container stays the authority. */
    void (*report)(void *arg, const struct ocra_agentd_msg *msg,
                   const struct ocra_agentd_peer *peer);
    void *arg;
};

/* A zeroed struct means every default. Strings are copied by ocra_agentd_start. */
struct ocra_agentd_options {
    const char *dir;         /* the directory of the runs' directories, absolute, required.
                              * Created when missing (mode 0700, missing parents 0755); an
                              * existing one is used as it is, and must be a directory (not a
                              * symlink) of this user that nobody else can write (else
                              * EACCES). Nothing but the runs' directories goes in it. */
    const char *socket_name; /* the socket's name in a run's directory; NULL:
                              * OCRA_AGENTD_SOCKET_NAME */
    size_t name_max;         /* the longest run name the caller will add; start fails with
                              * ENAMETOOLONG when dir/<name>/<socket_name> would not fit a unix
                              * socket address; 0: OCRA_AGENTD_NAME_MAX */
    unsigned dir_mode;       /* for a run's directory it creates; 0: 0750 */
    unsigned socket_mode;    /* 0: 0660 */
    gid_t gid;               /* group of the runs' directories and sockets (the workloads' gid,
                              * 65532 by default in ocra's sandbox); 0: left as created */
    int heartbeat_s;         /* told to agents: 0 default, else 1..OCRA_AGENTD_HEARTBEAT_MAX_S */
    int max_conns;           /* all runs together; 0: OCRA_AGENTD_MAX_CONNS */
    int run_conns;           /* one run; 0: OCRA_AGENTD_RUN_CONNS. More are accepted and closed
                              * at once, so one run cannot take the others' connections */
    int idle_ms;             /* 0: OCRA_AGENTD_IDLE_MS; per connection, reset by each line */
};

struct ocra_agentd;

/*
 * What ocra_agentd_start would refuse about opt.dir, without creating anything (`ocra daemon
 * --check`): an absolute path short enough for the runs' socket addresses; an existing
 * directory owned by this user, writable by it only; a missing one whose nearest existing
 * parent lets this user create it. EINVAL, ENAMETOOLONG, ENOTDIR, EACCES with the reason.
 */
int ocra_agentd_dir_check(const struct ocra_agentd_options *opt, struct ocra_err *err);

/*
 * Creates the directory (or checks an existing one, see opt.dir) and starts the server
 * thread, which serves no socket until a run is added. cb.check and cb.report are required.
 * Caller stops and frees the server with ocra_agentd_stop().
 */
int ocra_agentd_start(const struct ocra_agentd_options *opt, const struct ocra_agentd_callbacks *cb,
                      struct ocra_agentd **out, struct ocra_err *err);

/*
 * Serves run `name` (1..name_max bytes of [A-Za-z0-9._-], not starting with '.'), the replica
 * `replica` of event `event`: its directory dir/<name> is created (dir_mode, gid) or, when it
 * exists, kept as it is (it must be a directory of this user that nobody else can write), so
 * that a container which outlived a daemon restart reaches the new socket through its bind
 * mount; the socket is bound under a temporary name, given its mode and group, and renamed
 * over dir/<name>/<socket_name> (a stale one is replaced; a live one, another server's, fails
 * with EADDRINUSE; anything else there fails with EEXIST). Requests on that socket must name
 * `event`: any other is answered with an error, the connection closed, and the refusal logged
 * (at most once a minute per run) and counted. Adding a run that is served already with the
 * same event and replica does nothing; with another, fails with EEXIST. *dir: the run's
 * directory, to bind-mount at /run/ocra in its container only; caller frees it.
 */
int ocra_agentd_run_add(struct ocra_agentd *d, const char *name, const char *event, int replica,
                        char **dir, struct ocra_err *err);

/*
 * The run ended: its socket is closed and removed (when it is still the one this server
 * created), its directory removed when empty, its connections closed. A run this server does
 * not serve (it ended while an earlier server did): its directory is removed when nothing but
 * a stale socket (nobody listens) is in it; a live one is left alone.
 */
void ocra_agentd_run_remove(struct ocra_agentd *d, const char *name);

/* Counters since start, for metrics; read without locking (each is one aligned word). */
struct ocra_agentd_stats {
    uint64_t accepted; /* connections accepted */
    uint64_t refused;  /* connections closed at once: over run_conns or max_conns */
    uint64_t requests; /* valid requests answered */
    uint64_t rejected; /* lines rejected: malformed, over the bound, invalid */
    uint64_t forged;   /* valid requests refused: they named another event than their run's */
    uint64_t timeouts; /* connections closed by the idle deadline */
};
void ocra_agentd_stats_get(const struct ocra_agentd *d, struct ocra_agentd_stats *out);

/*
 * Stops the server thread (it finishes the callback in progress, if any), closes every
 * connection, removes each run's socket when it is still the one this server created, and
 * frees d. The runs' directories stay: the containers that outlive the daemon keep their
 * bind mounts, and the next server adds their runs again in the same directories. Not
 * async-signal-safe: call it from the thread that handles SIGTERM's flag. NULL: no-op.
 */
void ocra_agentd_stop(struct ocra_agentd *d);

#endif
