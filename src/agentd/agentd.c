/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agentd.c: the unix socket server of the agent protocol. One thread runs a poll loop over a
 * wake pipe, the listening socket of each run and the connections; every socket is
 * non-blocking, so a peer that sends slowly, never reads or never closes costs one connection
 * slot of its own run until its idle deadline, never the thread. A connection reads one line
 * at a time and reads no more until that line's reply has been written, which bounds its
 * memory to one request line and one reply line. The runs are added and removed by other
 * threads under the lock; the server thread alone closes and frees them (a removed run is
 * marked and the thread woken), so a connection's run stays valid while the thread uses it.
 */
#include "agentd/agentd_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define WARN_EVERY_NS (60ull * 1000000000ull) /* a run's refusals: one log line a minute */
#define STARVED_NS (100ull * 1000000ull)      /* no fd to accept with: listeners rest this long */
#define BACKLOG 16                            /* per run: its agent uses one connection */

struct run {
    char *name;  /* the directory's, under d->dir */
    char *dir;   /* d->dir/name */
    char *path;  /* dir/socket_name */
    char *event; /* what its requests must name */
    int replica;
    int lfd;
    dev_t dev; /* identity of the socket this server created */
    ino_t ino;
    bool removed; /* under d->mu: the server thread frees it */
    /* the server thread's only */
    int nconns;
    uint64_t warned_ns[2]; /* per refusal kind: the last one logged, monotonic; 0: none yet */
    uint64_t unlogged[2];  /* refusals of that kind since */
};

struct conn {
    int fd;
    bool closing; /* close once the reply is written */
    struct run *run;
    struct ocra_agentd_peer peer;
    uint64_t deadline_ns;
    size_t in_len;
    char in[OCRA_AGENTD_LINE_MAX];
    struct ocra_buf out;
    size_t out_off;
};

struct ocra_agentd {
    char *dir; /* the runs' directories are in it */
    char *socket_name;
    unsigned dir_mode, socket_mode;
    gid_t gid;
    size_t name_max;
    int wake[2];
    pthread_t thread;
    struct ocra_agentd_callbacks cb;
    int heartbeat_s, max_conns, run_conns, idle_ms;
    pthread_mutex_t mu; /* guards runs, nruns, stopping */
    struct run **runs;
    int nruns;
    bool stopping;
    /* the server thread's only */
    struct conn **conns;
    int nconns;
    struct run **polled; /* the runs of this round, as in pfd */
    int npolled;
    uint64_t starved_until_ns; /* accept found no fd: listeners rest until then */
    atomic_uint_least64_t accepted, refused, requests, rejected, forged, timeouts;
};

/* ---- connections ------------------------------------------------------------------- */

static void
conn_close(struct ocra_agentd *d, int i)
{
    struct conn *c = d->conns[i];

    c->run->nconns--;
    ocra_fd_close(c->fd);
    ocra_buf_fini(&c->out);
    free(c);
    d->conns[i] = d->conns[--d->nconns];
}

enum refusal { REFUSED_FORGED, REFUSED_CONN };

/* A refusal on r's socket, logged at most once a minute per run and kind: a workload that
 * keeps trying must not flood the log. */
static void
run_warn(struct run *r, enum refusal kind, uint64_t now, const char *what)
{
    char more[64] = "";

    if (r->warned_ns[kind] && now - r->warned_ns[kind] < WARN_EVERY_NS) {
        r->unlogged[kind]++;
        return;
    }
    if (r->unlogged[kind])
        snprintf(more, sizeof(more), " (and %" PRIu64 " more since the last such line)",
                 r->unlogged[kind]);
    ocra_log_warn("agent socket run=%s event=%s replica=%d: %s%s", r->name, r->event, r->replica,
                  what, more);
    r->warned_ns[kind] = now ? now : 1;
    r->unlogged[kind] = 0;
}

/* Accepts what is waiting on r's socket; over a cap, a connection is closed at once. */
static void
accept_all(struct ocra_agentd *d, struct run *r, uint64_t now)
{
    for (;;) {
        struct ucred cred = {0};
        socklen_t cl = sizeof(cred);
        struct conn *c;
        int fd = accept4(r->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0) {
            /* EAGAIN, or a connection that went away before accept; out of fds: the
             * listeners rest a moment rather than wake the loop at once again */
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                d->starved_until_ns = now + STARVED_NS;
            return;
        }
        atomic_fetch_add(&d->accepted, 1);
        if (r->nconns >= d->run_conns || d->nconns >= d->max_conns ||
            getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
            atomic_fetch_add(&d->refused, 1);
            close(fd);
            if (r->nconns >= d->run_conns || d->nconns >= d->max_conns)
                run_warn(r, REFUSED_CONN, now,
                         r->nconns >= d->run_conns
                             ? "connection refused: the run has its cap of connections open"
                             : "connection refused: the server has its cap of connections open");
            continue;
        }
        c = ocra_xcalloc(1, sizeof(*c));
        c->fd = fd;
        c->run = r;
        c->peer = (struct ocra_agentd_peer){.pid = cred.pid,
                                            .uid = cred.uid,
                                            .gid = cred.gid,
                                            .run = r->name,
                                            .replica = r->replica};
        c->deadline_ns = now + (uint64_t)d->idle_ms * 1000000u;
        ocra_buf_init(&c->out);
        d->conns[d->nconns++] = c;
        r->nconns++;
    }
}

/* A valid request that names another event than its run's: refused, the connection closed. */
static void
refuse_forged(struct ocra_agentd *d, struct conn *c, const struct ocra_agentd_msg *msg,
              uint64_t now)
{
    char what[160], q[96];

    atomic_fetch_add(&d->forged, 1);
    ocra_str_escape(msg->event, strlen(msg->event), 64, q, sizeof(q));
    snprintf(what, sizeof(what), "refused a %s naming event %s", ocra_agentd_type_name(msg->type),
             q);
    run_warn(c->run, REFUSED_FORGED, now, what);
    ocra_agentd_reply_error("this socket speaks for its own run's event only", &c->out);
    c->closing = true;
}

/* Parses one request line and queues its reply. */
static void
handle_line(struct ocra_agentd *d, struct conn *c, const char *line, size_t len, uint64_t now)
{
    struct ocra_err err = {0};
    struct ocra_agentd_msg msg;
    struct ocra_agentd_answer answer;

    if (ocra_agentd_msg_parse(line, len, &msg, &err) < 0) {
        atomic_fetch_add(&d->rejected, 1);
        ocra_agentd_reply_error(err.msg, &c->out);
        c->closing = true; /* a peer that sends garbage gets no second chance */
        return;
    }
    if (strcmp(msg.event, c->run->event) != 0) {
        refuse_forged(d, c, &msg, now);
        return;
    }
    atomic_fetch_add(&d->requests, 1);
    if (msg.type == OCRA_AGENTD_CHECK) {
        memset(&answer, 0, sizeof(answer));
        if (d->cb.check(d->cb.arg, &msg, &c->peer, &answer) < 0)
            ocra_agentd_reply_error("the daemon cannot answer now", &c->out);
        else
            ocra_agentd_reply_verdict(&answer, d->heartbeat_s, &c->out);
        return;
    }
    d->cb.report(d->cb.arg, &msg, &c->peer);
    ocra_agentd_reply_ok(&c->out);
}

/* Handles the next complete line in c->in, if any, while no reply is pending. */
static void
process_lines(struct ocra_agentd *d, struct conn *c, uint64_t now)
{
    while (c->out.len == 0 && !c->closing) {
        char *nl = memchr(c->in, '\n', c->in_len);
        size_t len;

        if (!nl) {
            if (c->in_len == sizeof(c->in)) {
                atomic_fetch_add(&d->rejected, 1);
                ocra_agentd_reply_error("line too long", &c->out);
                c->closing = true;
            }
            return;
        }
        len = (size_t)(nl - c->in);
        handle_line(d, c, c->in, len, now);
        memmove(c->in, nl + 1, c->in_len - len - 1);
        c->in_len -= len + 1;
        c->deadline_ns = now + (uint64_t)d->idle_ms * 1000000u;
    }
}
/* Returns -1 when the connection is to be closed. */
static int
conn_read(struct ocra_agentd *d, struct conn *c, uint64_t now)
{
    ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);

    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    if (n == 0)
        return -1; /* the peer is done (a partial last line is dropped) */
    c->in_len += (size_t)n;
    process_lines(d, c, now);
    return 0;
}

static int
conn_write(struct ocra_agentd *d, struct conn *c, uint64_t now)
{
    ssize_t n =
        send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);

    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    c->out_off += (size_t)n;
    if (c->out_off < c->out.len)
        return 0;
    ocra_buf_reset(&c->out);
    c->out_off = 0;
    if (c->closing)
        return -1;
    process_lines(d, c, now); /* lines that arrived while the reply was pending */
    return 0;
}

/* ---- the runs ---------------------------------------------------------------------- */

static void
run_free(struct run *r)
{
    ocra_fd_close(r->lfd);
    free(r->name);
    free(r->dir);
    free(r->path);
    free(r->event);
    free(r);
}

/* Removes r's socket when it is still the one this server created: a newer daemon may have
 * replaced it already. */
static void
run_unlink(const struct run *r)
{
    struct stat st;

    if (stat(r->path, &st) == 0 && st.st_dev == r->dev && st.st_ino == r->ino)
        (void)unlink(r->path);
}

static void
wake(struct ocra_agentd *d)
{
    /* a full pipe (EAGAIN) wakes the loop as well */
    while (write(d->wake[1], "x", 1) < 0 && errno == EINTR)
        ;
}

/* ---- the loop ---------------------------------------------------------------------- */

/* Frees the removed runs (their connections closed first) and takes the others as this
 * round's, in d->polled. Returns whether the server is stopping. */
static bool
runs_refresh(struct ocra_agentd *d)
{
    bool stopping;

    pthread_mutex_lock(&d->mu);
    for (int i = d->nruns - 1; i >= 0; i--) {
        struct run *r = d->runs[i];

        if (!r->removed)
            continue;
        /* backwards: conn_close moves the last connection into the freed slot */
        for (int j = d->nconns - 1; j >= 0; j--)
            if (d->conns[j]->run == r)
                conn_close(d, j);
        run_free(r);
        d->runs[i] = d->runs[--d->nruns];
    }
    d->polled = ocra_xrealloc(d->polled, (size_t)(d->nruns + 1) * sizeof(*d->polled));
    if (d->nruns)
        memcpy(d->polled, d->runs, (size_t)d->nruns * sizeof(*d->polled));
    d->npolled = d->nruns;
    stopping = d->stopping;
    pthread_mutex_unlock(&d->mu);
    return stopping;
}

static int
poll_timeout(const struct ocra_agentd *d, uint64_t now)
{
    uint64_t first = d->starved_until_ns > now ? d->starved_until_ns : UINT64_MAX;

    for (int i = 0; i < d->nconns; i++)
        if (d->conns[i]->deadline_ns < first)
            first = d->conns[i]->deadline_ns;
    if (first == UINT64_MAX)
        return -1;
    return first <= now ? 0 : (int)((first - now) / 1000000u + 1);
}

/* pfd: the connections' entries, in the order of d->conns. */
static void
serve_conns(struct ocra_agentd *d, const struct pollfd *pfd, uint64_t now)
{
    /* Backwards: conn_close moves the last connection into the freed slot. */
    for (int i = d->nconns - 1; i >= 0; i--) {
        struct conn *c = d->conns[i];
        short re = pfd[i].revents;
        int r = 0;

        if (re & POLLOUT)
            r = conn_write(d, c, now);
        else if (re & (POLLIN | POLLHUP | POLLERR))
            r = conn_read(d, c, now);
        if (r == 0 && now >= c->deadline_ns) {
            atomic_fetch_add(&d->timeouts, 1);
            r = -1;
        }
        if (r < 0)
            conn_close(d, i);
    }
}

/* One round's poll set: the wake pipe, the runs' sockets (left out while out of fds), the
 * connections. Returns the number of entries. */
static size_t
pfd_fill(const struct ocra_agentd *d, struct pollfd *pfd, uint64_t now)
{
    bool rest = d->starved_until_ns > now;
    size_t n = 0;

    pfd[n++] = (struct pollfd){.fd = d->wake[0], .events = POLLIN};
    for (int i = 0; i < d->npolled; i++)
        pfd[n++] = (struct pollfd){.fd = rest ? -1 : d->polled[i]->lfd, .events = POLLIN};
    for (int i = 0; i < d->nconns; i++) {
        const struct conn *c = d->conns[i];

        pfd[n++] = (struct pollfd){.fd = c->fd, .events = c->out.len ? POLLOUT : POLLIN};
    }
    return n;
}

static void *
serve(void *arg)
{
    struct ocra_agentd *d = arg;
    struct pollfd *pfd = NULL;
    size_t cap = 0;
    char drain[64];

    while (!runs_refresh(d)) {
        uint64_t now = ocra_time_mono_ns();
        size_t need = 1 + (size_t)d->npolled + (size_t)d->nconns;

        if (need > cap) {
            cap = need;
            pfd = ocra_xrealloc(pfd, cap * sizeof(*pfd));
        }
        need = pfd_fill(d, pfd, now);
        if (poll(pfd, (nfds_t)need, poll_timeout(d, now)) < 0 && errno != EINTR)
            ocra_sleep_ms(10); /* ENOMEM: try again shortly rather than spin */
        if (pfd[0].revents)
            while (read(d->wake[0], drain, sizeof(drain)) > 0)
                ;
        now = ocra_time_mono_ns();
        /* before accepting: the entries after the runs' match the connections now */
        serve_conns(d, pfd + 1 + d->npolled, now);
        for (int i = 0; i < d->npolled; i++)
            if (pfd[1 + i].revents & POLLIN)
                accept_all(d, d->polled[i], now);
    }
    free(pfd);
    return NULL;
}

/* ---- start and stop ---------------------------------------------------------------- */

/* mkdir of each missing parent of dir, mode 0755. */
static int
make_parents(const char *dir, struct ocra_err *err)
{
    char *p = ocra_xstrdup(dir), *s = strrchr(p, '/');
    int ret = 0;

    *s = '\0'; /* dir is absolute and not "/": s exists */
    for (s = strchr(p + 1, '/'); ret == 0; s = strchr(s + 1, '/')) {
        if (s)
            *s = '\0';
        if (p[0] && mkdir(p, 0755) < 0 && errno != EEXIST)
            ret = ocra_err_sys(err, "mkdir %s", p);
        if (!s)
            break;
        *s = '/';
    }
    free(p);
    return ret;
}

/* An existing directory is used only when it is a real directory (not a symlink), owned by
 * this user, writable by nobody else. */
static int
existing_dir_ok(const char *dir, struct ocra_err *err)
{
    struct stat st;

    if (lstat(dir, &st) < 0)
        return ocra_err_sys(err, "%s", dir);
    if (!S_ISDIR(st.st_mode))
        return ocra_err_set(err, ENOTDIR, "%s: not a directory (a symlink is not accepted)", dir);
    if (st.st_uid != geteuid() || (st.st_mode & 022))
        return ocra_err_set(err, EACCES,
                            "%s: an existing directory must belong to uid %u and be writable by "
                            "it only (owner %u, mode %03o)",
                            dir, (unsigned)geteuid(), (unsigned)st.st_uid,
                            (unsigned)(st.st_mode & 0777));
    if (access(dir, W_OK | X_OK) < 0)
        return ocra_err_sys(err, "%s: not writable by uid %u", dir, (unsigned)geteuid());
    return 0;
}

/*
 * A directory this server creates gets mode and gid. One that exists is used as it is, so
 * that a misconfigured path never changes the mode of a shared directory (/run, /tmp): it
 * must be a real directory (not a symlink), owned by this user, writable by nobody else.
 */
static int
make_dir(const char *dir, unsigned mode, gid_t gid, struct ocra_err *err)
{
    if (make_parents(dir, err) < 0)
        return -1;
    if (mkdir(dir, 0700) == 0) {
        if ((gid != 0 && chown(dir, (uid_t)-1, gid) < 0) || chmod(dir, mode) < 0)
            return ocra_err_sys(err, "%s: setting group %u and mode %03o", dir, (unsigned)gid,
                                mode);
        return 0;
    }
    if (errno != EEXIST)
        return ocra_err_sys(err, "mkdir %s", dir);
    return existing_dir_ok(dir, err);
}

static int
sun_set(struct sockaddr_un *sa, const char *path, struct ocra_err *err)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa->sun_path))
        return ocra_err_set(err, ENAMETOOLONG, "%s: longer than a unix socket path (%zu bytes)",
                            path, sizeof(sa->sun_path) - 1);
    memcpy(sa->sun_path, path, strlen(path) + 1);
    return 0;
}

/* Fails when something other than a stale socket is at path. */
static int
check_old(const char *path, struct ocra_err *err)
{
    struct sockaddr_un sa;
    struct stat st;
    int fd, r, e;

    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : ocra_err_sys(err, "%s", path);
    if (!S_ISSOCK(st.st_mode))
        return ocra_err_set(err, EEXIST, "%s exists and is not a socket", path);
    if (sun_set(&sa, path, err) < 0)
        return -1;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return ocra_err_sys(err, "socket");
    r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    e = errno;
    close(fd);
    if (r == 0 || e == EAGAIN)
        return ocra_err_set(err, EADDRINUSE, "%s: another server is listening there", path);
    return 0; /* ECONNREFUSED: nobody listens, a leftover of a stopped daemon */
}

/* Binds r's socket under a temporary name, sets mode and group, listens, renames over
 * r->path. */
static int
listen_at(const struct ocra_agentd *d, struct run *r, struct ocra_err *err)
{
    char *tmp = ocra_xasprintf("%s/.%ld.tmp", r->dir, (long)getpid());
    struct sockaddr_un sa;
    struct stat st;
    int ret = -1;

    if (sun_set(&sa, tmp, err) < 0)
        goto out;
    (void)unlink(tmp); /* left by an earlier run with our pid */
    r->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (r->lfd < 0) {
        ocra_err_sys(err, "socket");
        goto out;
    }
    if (bind(r->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        ocra_err_sys(err, "bind %s", tmp);
        goto out;
    }
    if ((d->gid != 0 && chown(tmp, (uid_t)-1, d->gid) < 0) || chmod(tmp, d->socket_mode) < 0 ||
        listen(r->lfd, BACKLOG) < 0 || rename(tmp, r->path) < 0 || stat(r->path, &st) < 0) {
        ocra_err_sys(err, "socket %s", r->path);
        (void)unlink(tmp);
        goto out;
    }
    r->dev = st.st_dev;
    r->ino = st.st_ino;
    ret = 0;
out:
    free(tmp);
    return ret;
}

#define TMP_NAME_MAX 16 /* listen_at's ".<pid>.tmp" */
#define SUN_PATH_SIZE sizeof(((struct sockaddr_un *)0)->sun_path)

static int
check_options(const struct ocra_agentd_options *opt, const struct ocra_agentd_callbacks *cb,
              struct ocra_err *err)
{
    const char *name = opt->socket_name ? opt->socket_name : OCRA_AGENTD_SOCKET_NAME;
    size_t name_max = opt->name_max ? opt->name_max : OCRA_AGENTD_NAME_MAX;
    size_t longest = strlen(name) > TMP_NAME_MAX ? strlen(name) : TMP_NAME_MAX;

    if (!opt->dir || opt->dir[0] != '/' || strspn(opt->dir, "/") == strlen(opt->dir))
        return ocra_err_set(err, EINVAL,
                            "agent socket directory: an absolute path other than / is needed");
    if (!name[0] || strchr(name, '/') || name[0] == '.')
        return ocra_err_set(err, EINVAL, "agent socket name \"%s\": a plain file name is needed",
                            name);
    if (strlen(opt->dir) + 1 + name_max + 1 + longest >= SUN_PATH_SIZE)
        return ocra_err_set(err, ENAMETOOLONG,
                            "agent socket directory %s: a run's socket %s/<%zu bytes>/%s would be "
                            "longer than a unix socket address (%zu bytes); choose a shorter one",
                            opt->dir, opt->dir, name_max, name, SUN_PATH_SIZE - 1);
    if (opt->heartbeat_s < 0 || opt->heartbeat_s > OCRA_AGENTD_HEARTBEAT_MAX_S)
        return ocra_err_set(err, EINVAL, "agent heartbeat: %d s is outside 1..%d", opt->heartbeat_s,
                            OCRA_AGENTD_HEARTBEAT_MAX_S);
    if (opt->max_conns < 0 || opt->max_conns > 65536 || opt->run_conns < 0 ||
        opt->run_conns > 65536 || opt->idle_ms < 0)
        return ocra_err_set(err, EINVAL,
                            "agent server: max_conns, run_conns or idle_ms out of range");
    if (cb && (!cb->check || !cb->report))
        return ocra_err_set(err, EINVAL, "agent server: both callbacks are needed");
    return 0;
}

int
ocra_agentd_dir_check(const struct ocra_agentd_options *opt, struct ocra_err *err)
{
    struct stat st;
    char *p;
    int ret;

    if (check_options(opt, NULL, err) < 0)
        return -1;
    if (lstat(opt->dir, &st) == 0)
        return existing_dir_ok(opt->dir, err);
    if (errno != ENOENT && errno != ENOTDIR)
        return ocra_err_sys(err, "%s", opt->dir);
    /* missing: the nearest existing parent must let this user create it */
    p = ocra_xstrdup(opt->dir);
    for (;;) {
        char *s = strrchr(p, '/');

        s[s == p] = '\0'; /* "/a" -> "/", "/a/b" -> "/a" */
        if (stat(p, &st) == 0 || errno != ENOENT || !strcmp(p, "/"))
            break;
    }
    if (stat(p, &st) < 0)
        ret = ocra_err_sys(err, "%s: cannot create it under %s", opt->dir, p);
    else if (!S_ISDIR(st.st_mode))
        ret =
            ocra_err_set(err, ENOTDIR, "%s: cannot create it: %s is not a directory", opt->dir, p);
    else if (access(p, W_OK | X_OK) < 0)
        ret = ocra_err_sys(err, "%s: cannot create it: %s is not writable by uid %u", opt->dir, p,
                           (unsigned)geteuid());
    else
        ret = 0;
    free(p);
    return ret;
}

static struct ocra_agentd *
agentd_new(const struct ocra_agentd_options *opt, const struct ocra_agentd_callbacks *cb)
{
    struct ocra_agentd *d = ocra_xcalloc(1, sizeof(*d));
    size_t dl = strlen(opt->dir);

    while (dl > 1 && opt->dir[dl - 1] == '/')
        dl--;
    d->dir = ocra_xstrndup(opt->dir, dl);
    d->socket_name = ocra_xstrdup(opt->socket_name ? opt->socket_name : OCRA_AGENTD_SOCKET_NAME);
    d->name_max = opt->name_max ? opt->name_max : OCRA_AGENTD_NAME_MAX;
    d->dir_mode = opt->dir_mode ? opt->dir_mode : 0750;
    d->socket_mode = opt->socket_mode ? opt->socket_mode : 0660;
    d->gid = opt->gid;
    d->wake[0] = d->wake[1] = -1;
    d->cb = *cb;
    d->heartbeat_s = opt->heartbeat_s ? opt->heartbeat_s : OCRA_AGENTD_HEARTBEAT_S;
    d->max_conns = opt->max_conns ? opt->max_conns : OCRA_AGENTD_MAX_CONNS;
    d->run_conns = opt->run_conns ? opt->run_conns : OCRA_AGENTD_RUN_CONNS;
    d->idle_ms = opt->idle_ms ? opt->idle_ms : OCRA_AGENTD_IDLE_MS;
    d->conns = ocra_xcalloc((size_t)d->max_conns, sizeof(*d->conns));
    pthread_mutex_init(&d->mu, NULL);
    return d;
}

static void
agentd_free(struct ocra_agentd *d)
{
    while (d->nconns > 0)
        conn_close(d, d->nconns - 1);
    for (int i = 0; i < d->nruns; i++)
        run_free(d->runs[i]);
    ocra_fd_close(d->wake[0]);
    ocra_fd_close(d->wake[1]);
    pthread_mutex_destroy(&d->mu);
    free(d->runs);
    free(d->polled);
    free(d->conns);
    free(d->socket_name);
    free(d->dir);
    free(d);
}

int
ocra_agentd_start(const struct ocra_agentd_options *opt, const struct ocra_agentd_callbacks *cb,
                  struct ocra_agentd **out, struct ocra_err *err)
{
    struct ocra_agentd *d = NULL;
    sigset_t all, old;
    int r;

    if (!cb)
        return ocra_err_set(err, EINVAL, "agent server: both callbacks are needed");
    if (check_options(opt, cb, err) < 0)
        return -1;
    d = agentd_new(opt, cb);
    if (make_dir(d->dir, 0700, 0, err) < 0) /* the workloads see their run's directory only */
        goto fail;
    if (pipe2(d->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
        ocra_err_sys(err, "pipe");
        goto fail;
    }
    /* The server thread takes no signals: the daemon's own threads handle them. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = pthread_create(&d->thread, NULL, serve, d);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        ocra_err_set(err, r, "agent server thread: %s", strerror(r));
        goto fail;
    }
    *out = d;
    return 0;
fail:
    agentd_free(d);
    return ocra_err_wrap(err, "agent socket");
}

/* A run's directory name: 1..max bytes of [A-Za-z0-9._-], not starting with '.'. */
static bool
name_valid(const char *name, size_t max)
{
    size_t n = strlen(name);

    if (n == 0 || n > max || name[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* The run's socket and directory, made; under d->mu. */
static struct run *
run_new(struct ocra_agentd *d, const char *name, const char *event, int replica,
        struct ocra_err *err)
{
    struct run *r = ocra_xcalloc(1, sizeof(*r));

    r->name = ocra_xstrdup(name);
    r->dir = ocra_xasprintf("%s/%s", d->dir, name);
    r->path = ocra_xasprintf("%s/%s", r->dir, d->socket_name);
    r->event = ocra_xstrdup(event);
    r->replica = replica;
    r->lfd = -1;
    if (make_dir(r->dir, d->dir_mode, d->gid, err) < 0 || check_old(r->path, err) < 0 ||
        listen_at(d, r, err) < 0) {
        run_free(r);
        return NULL;
    }
    return r;
}

int
ocra_agentd_run_add(struct ocra_agentd *d, const char *name, const char *event, int replica,
                    char **dir, struct ocra_err *err)
{
    struct run *r = NULL;
    char q[96];
    int ret = -1;

    if (!name || !name_valid(name, d->name_max))
        return ocra_err_set(err, EINVAL,
                            "agent socket of run %s: a name of 1..%zu bytes of [A-Za-z0-9._-], "
                            "not starting with '.', is needed",
                            name ? ocra_str_escape(name, strlen(name), 64, q, sizeof(q)) : "(null)",
                            d->name_max);
    if (!event || !ocra_agentd_str_valid(event, strlen(event), OCRA_AGENTD_EVENT_MAX, 0) ||
        replica < 0)
        return ocra_err_set(err, EINVAL,
                            "agent socket of run %s: an event id of 1..%d bytes of printable "
                            "ASCII without space and a replica >= 0 are needed",
                            name, OCRA_AGENTD_EVENT_MAX);
    pthread_mutex_lock(&d->mu);
    for (int i = 0; i < d->nruns; i++) {
        const struct run *o = d->runs[i];

        if (o->removed || strcmp(o->name, name) != 0)
            continue;
        if (strcmp(o->event, event) == 0 && o->replica == replica) {
            *dir = ocra_xstrdup(o->dir);
            ret = 0;
        } else {
            ret = ocra_err_set(err, EEXIST,
                               "agent socket of run %s: served already for event %s replica %d",
                               name, o->event, o->replica);
        }
        goto out;
    }
    if (!(r = run_new(d, name, event, replica, err))) {
        ocra_err_wrap(err, "agent socket of run %s", name);
        goto out;
    }
    d->runs = ocra_xrealloc(d->runs, (size_t)(d->nruns + 1) * sizeof(*d->runs));
    d->runs[d->nruns++] = r;
    *dir = ocra_xstrdup(r->dir);
    ret = 1; /* wake the server: a socket to poll */
out:
    pthread_mutex_unlock(&d->mu);
    if (ret == 1)
        wake(d);
    return ret < 0 ? -1 : 0;
}

/* A run this server does not serve (it ended while another daemon served it): its directory
 * goes when nothing but a stale socket is in it. Under d->mu. */
static void
remove_unserved(const struct ocra_agentd *d, const char *name)
{
    char *dir = ocra_xasprintf("%s/%s", d->dir, name);
    char *path = ocra_xasprintf("%s/%s", dir, d->socket_name);
    struct ocra_err err = {0};
    struct stat st;

    if (check_old(path, &err) == 0) { /* absent, or a socket nobody listens on */
        if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
            (void)unlink(path);
        (void)rmdir(dir); /* not empty: something else is in it; left alone */
    }
    free(path);
    free(dir);
}

void
ocra_agentd_run_remove(struct ocra_agentd *d, const char *name)
{
    bool found = false;

    if (!d || !name || !name_valid(name, d->name_max))
        return;
    pthread_mutex_lock(&d->mu);
    for (int i = 0; i < d->nruns && !found; i++) {
        struct run *r = d->runs[i];

        if (r->removed || strcmp(r->name, name) != 0)
            continue;
        r->removed = found = true;
        run_unlink(r);
        (void)rmdir(r->dir); /* not empty: something else is in it; left alone */
    }
    if (!found)
        remove_unserved(d, name);
    pthread_mutex_unlock(&d->mu);
    if (found)
        wake(d);
}

void
ocra_agentd_stats_get(const struct ocra_agentd *d, struct ocra_agentd_stats *out)
{
    out->accepted = atomic_load(&d->accepted);
    out->refused = atomic_load(&d->refused);
    out->requests = atomic_load(&d->requests);
    out->rejected = atomic_load(&d->rejected);
    out->forged = atomic_load(&d->forged);
    out->timeouts = atomic_load(&d->timeouts);
}

void
ocra_agentd_stop(struct ocra_agentd *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->mu);
    d->stopping = true;
    pthread_mutex_unlock(&d->mu);
    wake(d);
    pthread_join(d->thread, NULL);
    /* The sockets go, the directories stay: containers that outlive the daemon keep their
     * bind mounts, and the next server listens in the same directories again. */
    for (int i = 0; i < d->nruns; i++)
        if (!d->runs[i]->removed)
            run_unlink(d->runs[i]);
    agentd_free(d);
}
