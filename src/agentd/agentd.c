/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agentd.c: the unix socket server of the agent protocol. One thread runs a poll loop over a
 * wake pipe, the listening socket and the connections; every socket is non-blocking, so a
 * peer that sends slowly, never reads or never closes costs one connection slot until its
 * idle deadline, never the thread. A connection reads one line at a time and reads no more
 * until that line's reply has been written, which bounds its memory to one request line and
 * one reply line.
 */
#include "agentd/agentd_int.h"

#include <errno.h>
#include <fcntl.h>
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

struct conn {
    int fd;
    bool closing; /* close once the reply is written */
    struct ocra_agentd_peer peer;
    uint64_t deadline_ns;
    size_t in_len;
    char in[OCRA_AGENTD_LINE_MAX];
    struct ocra_buf out;
    size_t out_off;
};

struct ocra_agentd {
    char *path; /* the socket */
    int lfd;
    int wake[2];
    dev_t dev; /* identity of the socket this server created */
    ino_t ino;
    pthread_t thread;
    struct ocra_agentd_callbacks cb;
    int heartbeat_s, max_conns, idle_ms;
    struct conn **conns;
    int nconns;
    atomic_uint_least64_t accepted, refused, requests, rejected, timeouts;
};

/* ---- connections ------------------------------------------------------------------- */

static void
conn_close(struct ocra_agentd *d, int i)
{
    struct conn *c = d->conns[i];

    ocra_fd_close(c->fd);
    ocra_buf_fini(&c->out);
    free(c);
    d->conns[i] = d->conns[--d->nconns];
}

static void
accept_all(struct ocra_agentd *d, uint64_t now)
{
    for (;;) {
        struct ucred cred = {0};
        socklen_t cl = sizeof(cred);
        struct conn *c;
        int fd = accept4(d->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0)
            return; /* EAGAIN, or a connection that went away before accept */
        atomic_fetch_add(&d->accepted, 1);
        if (d->nconns >= d->max_conns || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0) {
            atomic_fetch_add(&d->refused, 1);
            close(fd);
            continue;
        }
        c = ocra_xcalloc(1, sizeof(*c));
        c->fd = fd;
        c->peer = (struct ocra_agentd_peer){.pid = cred.pid, .uid = cred.uid, .gid = cred.gid};
        c->deadline_ns = now + (uint64_t)d->idle_ms * 1000000u;
        ocra_buf_init(&c->out);
        d->conns[d->nconns++] = c;
    }
}

/* Parses one request line and queues its reply. */
static void
handle_line(struct ocra_agentd *d, struct conn *c, const char *line, size_t len)
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
        handle_line(d, c, c->in, len);
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

/* ---- the loop ---------------------------------------------------------------------- */

static int
poll_timeout(const struct ocra_agentd *d, uint64_t now)
{
    uint64_t first = UINT64_MAX;

    for (int i = 0; i < d->nconns; i++)
        if (d->conns[i]->deadline_ns < first)
            first = d->conns[i]->deadline_ns;
    if (first == UINT64_MAX)
        return -1;
    return first <= now ? 0 : (int)((first - now) / 1000000u + 1);
}

static void
serve_conns(struct ocra_agentd *d, const struct pollfd *pfd, uint64_t now)
{
    /* Backwards: conn_close moves the last connection into the freed slot. */
    for (int i = d->nconns - 1; i >= 0; i--) {
        struct conn *c = d->conns[i];
        short re = pfd[2 + i].revents;
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

static void *
serve(void *arg)
{
    struct ocra_agentd *d = arg;
    struct pollfd *pfd = ocra_xcalloc((size_t)d->max_conns + 2, sizeof(*pfd));

    for (;;) {
        uint64_t now = ocra_time_mono_ns();
        int n = d->nconns;

        pfd[0] = (struct pollfd){.fd = d->wake[0], .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = d->lfd, .events = POLLIN};
        for (int i = 0; i < n; i++) {
            const struct conn *c = d->conns[i];

            pfd[2 + i] = (struct pollfd){.fd = c->fd, .events = c->out.len ? POLLOUT : POLLIN};
        }
        if (poll(pfd, (nfds_t)n + 2, poll_timeout(d, now)) < 0 && errno != EINTR)
            ocra_sleep_ms(10); /* ENOMEM: try again shortly rather than spin */
        if (pfd[0].revents)
            break;
        now = ocra_time_mono_ns();
        serve_conns(d, pfd, now); /* before accepting: pfd[2..] matches the conns now */
        if (pfd[1].revents & POLLIN)
            accept_all(d, now);
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

/*
 * A directory this server creates gets mode and gid. One that exists is used as it is, so
 * that a misconfigured path never changes the mode of a shared directory (/run, /tmp): it
 * must be a real directory (not a symlink), owned by this user, writable by nobody else.
 */
static int
make_dir(const char *dir, unsigned mode, gid_t gid, struct ocra_err *err)
{
    struct stat st;

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
    return 0;
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

/* Binds under a temporary name, sets mode and group, listens, renames over path. */
static int
listen_at(struct ocra_agentd *d, const char *dir, const struct ocra_agentd_options *opt,
          struct ocra_err *err)
{
    char *tmp = ocra_xasprintf("%s/.agentd.%ld.tmp", dir, (long)getpid());
    struct sockaddr_un sa;
    struct stat st;
    int ret = -1;

    if (sun_set(&sa, tmp, err) < 0)
        goto out;
    (void)unlink(tmp); /* left by an earlier run with our pid */
    d->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (d->lfd < 0) {
        ocra_err_sys(err, "socket");
        goto out;
    }
    if (bind(d->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        ocra_err_sys(err, "bind %s", tmp);
        goto out;
    }
    if ((opt->gid != 0 && chown(tmp, (uid_t)-1, opt->gid) < 0) ||
        chmod(tmp, opt->socket_mode ? opt->socket_mode : 0660) < 0 || listen(d->lfd, 128) < 0 ||
        rename(tmp, d->path) < 0 || stat(d->path, &st) < 0) {
        ocra_err_sys(err, "socket %s", d->path);
        (void)unlink(tmp);
        goto out;
    }
    d->dev = st.st_dev;
    d->ino = st.st_ino;
    ret = 0;
out:
    free(tmp);
    return ret;
}

static int
check_options(const struct ocra_agentd_options *opt, const struct ocra_agentd_callbacks *cb,
              struct ocra_err *err)
{
    const char *name = opt->socket_name ? opt->socket_name : OCRA_AGENTD_SOCKET_NAME;

    if (!opt->dir || opt->dir[0] != '/' || strspn(opt->dir, "/") == strlen(opt->dir))
        return ocra_err_set(err, EINVAL,
                            "agent socket directory: an absolute path other than / is needed");
    if (!name[0] || strchr(name, '/') || name[0] == '.')
        return ocra_err_set(err, EINVAL, "agent socket name \"%s\": a plain file name is needed",
                            name);
    if (opt->heartbeat_s < 0 || opt->heartbeat_s > OCRA_AGENTD_HEARTBEAT_MAX_S)
        return ocra_err_set(err, EINVAL, "agent heartbeat: %d s is outside 1..%d", opt->heartbeat_s,
                            OCRA_AGENTD_HEARTBEAT_MAX_S);
    if (opt->max_conns < 0 || opt->max_conns > 65536 || opt->idle_ms < 0)
        return ocra_err_set(err, EINVAL, "agent server: max_conns or idle_ms out of range");
    if (!cb || !cb->check || !cb->report)
        return ocra_err_set(err, EINVAL, "agent server: both callbacks are needed");
    return 0;
}

static struct ocra_agentd *
agentd_new(const struct ocra_agentd_options *opt, const struct ocra_agentd_callbacks *cb)
{
    struct ocra_agentd *d = ocra_xcalloc(1, sizeof(*d));
    size_t dl = strlen(opt->dir);

    while (dl > 1 && opt->dir[dl - 1] == '/')
        dl--;
    d->path = ocra_xasprintf("%.*s/%s", (int)dl, opt->dir,
                             opt->socket_name ? opt->socket_name : OCRA_AGENTD_SOCKET_NAME);
    d->lfd = d->wake[0] = d->wake[1] = -1;
    d->cb = *cb;
    d->heartbeat_s = opt->heartbeat_s ? opt->heartbeat_s : OCRA_AGENTD_HEARTBEAT_S;
    d->max_conns = opt->max_conns ? opt->max_conns : OCRA_AGENTD_MAX_CONNS;
    d->idle_ms = opt->idle_ms ? opt->idle_ms : OCRA_AGENTD_IDLE_MS;
    d->conns = ocra_xcalloc((size_t)d->max_conns, sizeof(*d->conns));
    return d;
}

static void
agentd_free(struct ocra_agentd *d)
{
    while (d->nconns > 0)
        conn_close(d, d->nconns - 1);
    ocra_fd_close(d->lfd);
    ocra_fd_close(d->wake[0]);
    ocra_fd_close(d->wake[1]);
    free(d->conns);
    free(d->path);
    free(d);
}

int
ocra_agentd_start(const struct ocra_agentd_options *opt, const struct ocra_agentd_callbacks *cb,
                  struct ocra_agentd **out, struct ocra_err *err)
{
    struct ocra_agentd *d = NULL;
    sigset_t all, old;
    char *dir = NULL;
    int r;

    if (check_options(opt, cb, err) < 0)
        return -1;
    d = agentd_new(opt, cb);
    dir = ocra_xstrndup(d->path, (size_t)(strrchr(d->path, '/') - d->path));
    if (make_dir(dir, opt->dir_mode ? opt->dir_mode : 0750, opt->gid, err) < 0 ||
        check_old(d->path, err) < 0 || listen_at(d, dir, opt, err) < 0)
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
    free(dir);
    *out = d;
    return 0;
fail:
    free(dir);
    agentd_free(d);
    return ocra_err_wrap(err, "agent socket");
}

const char *
ocra_agentd_socket_path(const struct ocra_agentd *d)
{
    return d->path;
}

void
ocra_agentd_stats_get(const struct ocra_agentd *d, struct ocra_agentd_stats *out)
{
    out->accepted = atomic_load(&d->accepted);
    out->refused = atomic_load(&d->refused);
    out->requests = atomic_load(&d->requests);
    out->rejected = atomic_load(&d->rejected);
    out->timeouts = atomic_load(&d->timeouts);
}

void
ocra_agentd_stop(struct ocra_agentd *d)
{
    struct stat st;

    if (!d)
        return;
    while (write(d->wake[1], "x", 1) < 0 && errno == EINTR)
        ;
    pthread_join(d->thread, NULL);
    /* Only our own socket: a newer daemon may have replaced it already. */
    if (stat(d->path, &st) == 0 && st.st_dev == d->dev && st.st_ino == d->ino)
        (void)unlink(d->path);
    agentd_free(d);
}
