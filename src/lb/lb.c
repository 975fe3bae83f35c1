/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lb.c: HAProxy itself: started (`haproxy -D -p <dir>/haproxy.pid -f <dir>/haproxy.cfg`) or
 * adopted again after a daemon that died without stopping it (the pid file names a live
 * process whose admin socket answers: its servers and sessions live on, so a daemon crash
 * drops no request), or an operator's attached by its admin socket. One command per
 * connection to the admin socket (HAProxy's non-interactive mode: it answers and closes).
 * The frontends file (<dir>/frontends) keeps which event holds which port, so a model's
 * address stays the same across restarts.
 */
#include "lb/lb.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>

#define REPLY_MAX (4u << 20) /* show stat of a few thousand servers */
#define IO_TIMEOUT_S 10
#define POLL_MS 100

struct ocra_lb {
    pthread_mutex_t mu; /* guards the frontends */
    struct ocra_lb_conf c;
    char *dir, *socket, *frontends_path;
    int64_t pid; /* the HAProxy we own; 0 when attached */
    int *ports;
    char **ids;
    size_t n;
    int inter_ms;
    char **gone; /* servers drained: not added again until forgotten (guarded by mu) */
    size_t n_gone;
};

static void
sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int
sock_call(const char *path, const char *cmd, char **reply, struct ocra_err *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    struct ocra_buf b;
    char chunk[8192];
    int fd = -1, ret = -1;

    ocra_buf_init(&b);
    if (strlen(path) >= sizeof(sa.sun_path)) {
        ocra_err_set(err, ENAMETOOLONG, "admin socket path %s is too long", path);
        goto out;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        ocra_err_set(err, errno, "connect to HAProxy's admin socket %s", path);
        goto out;
    }
    if (ocra_write_all(fd, cmd, strlen(cmd)) < 0 || ocra_write_all(fd, "\n", 1) < 0) {
        ocra_err_set(err, errno, "send to HAProxy's admin socket %s", path);
        goto out;
    }
    for (;;) {
        ssize_t got = read(fd, chunk, sizeof(chunk));

        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            ocra_err_set(err, errno == EAGAIN ? ETIMEDOUT : errno, "read HAProxy's admin socket %s",
                         path);
            goto out;
        }
        if (got == 0)
            break;
        if (b.len + (size_t)got > REPLY_MAX) {
            ocra_err_set(err, EPROTO, "HAProxy's reply is longer than %u bytes", REPLY_MAX);
            goto out;
        }
        ocra_buf_append(&b, chunk, (size_t)got);
    }
    ocra_buf_putc(&b, '\0'); /* an empty reply is a NUL-terminated "" too */
    b.len--;
    *reply = ocra_buf_take(&b);
    ret = 0;
out:
    ocra_fd_close(fd);
    ocra_buf_fini(&b);
    return ret;
}

int
ocra_lb_call(struct ocra_lb *lb, const char *cmd, char **reply, struct ocra_err *err)
{
    if (sock_call(lb->socket, cmd, reply, err) < 0)
        return ocra_err_wrap(err, "haproxy '%s'", cmd);
    return 0;
}

/* The live HAProxy the pid file names, or 0. */
static int64_t
pid_alive(const char *pidfile)
{
    char *text = NULL;
    int64_t pid = 0;

    if (ocra_file_read(pidfile, 64, &text, NULL, NULL) < 0)
        return 0;
    text[strcspn(text, "\n")] = '\0';
    if (ocra_parse_i64(text, 2, INT32_MAX, &pid, NULL) < 0 || kill((pid_t)pid, 0) < 0)
        pid = 0;
    free(text);
    return pid;
}

static int
spawn_haproxy(struct ocra_lb *lb, const char *cfg, const char *pidfile, struct ocra_err *err)
{
    /* copies: execv wants char *const[], and the child only calls exec */
    char *argv[] = {ocra_xstrdup(lb->c.haproxy),
                    ocra_xstrdup("-D"),
                    ocra_xstrdup("-p"),
                    ocra_xstrdup(pidfile),
                    ocra_xstrdup("-f"),
                    ocra_xstrdup(cfg),
                    NULL};
    int status = 0;
    pid_t pid = fork();

    if (pid != 0)
        for (size_t i = 0; argv[i]; i++)
            free(argv[i]);
    if (pid < 0)
        return ocra_err_set(err, errno, "fork for %s", lb->c.haproxy);
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);

        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
        }
        execv(lb->c.haproxy, argv);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return ocra_err_set(err, errno, "wait for %s", lb->c.haproxy);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return ocra_err_set(err, EIO,
                            "%s -f %s exited with status %d (127: no such binary; its "
                            "messages are on the daemon's standard error)",
                            lb->c.haproxy, cfg, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}

static int
frontends_load(struct ocra_lb *lb, struct ocra_err *err)
{
    char *text = NULL;
    int ret;

    if (ocra_file_read(lb->frontends_path, 1u << 20, &text, NULL, err) < 0) {
        if (err->code != ENOENT)
            return -1;
        memset(err, 0, sizeof(*err));
        return 0;
    }
    ret = ocra_lb_frontends_parse(text, &lb->ports, &lb->ids, &lb->n, err);
    free(text);
    if (ret < 0)
        return ocra_err_wrap(err,
                             "%s (remove the bad line, or the file: ports are then "
                             "handed out again)",
                             lb->frontends_path);
    return 0;
}

static int
start_or_adopt(struct ocra_lb *lb, struct ocra_err *err)
{
    char *cfg = ocra_xasprintf("%s/haproxy.cfg", lb->dir);
    char *pidfile = ocra_xasprintf("%s/haproxy.pid", lb->dir);
    char *text = NULL, *reply = NULL;
    int ret = -1;

    if ((lb->pid = pid_alive(pidfile)) && sock_call(lb->socket, "show info", &reply, NULL) == 0) {
        ocra_log_info("lb: adopted haproxy pid=%lld socket=%s", (long long)lb->pid, lb->socket);
        ret = 0;
        goto out;
    }
    text = ocra_lb_config_text(&lb->c, lb->socket);
    if (ocra_file_write_atomic(cfg, text, strlen(text), 0600, err) < 0)
        goto out;
    if (spawn_haproxy(lb, cfg, pidfile, err) < 0)
        goto out;
    for (int i = 0; i < 50 && !(lb->pid = pid_alive(pidfile)); i++)
        sleep_ms(POLL_MS);
    if (!lb->pid) {
        ocra_err_set(err, ESRCH, "haproxy started but %s names no live process", pidfile);
        goto out;
    }
    ocra_log_info("lb: started haproxy pid=%lld ports=%d-%d socket=%s", (long long)lb->pid,
                  lb->c.port_min, lb->c.port_max, lb->socket);
    ret = 0;
out:
    free(reply);
    free(text);
    free(cfg);
    free(pidfile);
    return ret;
}

struct ocra_lb *
ocra_lb_open(const struct ocra_lb_conf *c, struct ocra_err *err)
{
    struct ocra_lb *lb = ocra_xcalloc(1, sizeof(*lb));
    char *reply = NULL;

    pthread_mutex_init(&lb->mu, NULL);
    lb->c = *c;
    lb->dir = ocra_xstrdup(c->dir);
    lb->c.dir = lb->dir;
    lb->inter_ms = c->check_inter_ms;
    lb->frontends_path = ocra_xasprintf("%s/frontends", lb->dir);
    if (mkdir(lb->dir, 0700) < 0 && errno != EEXIST) {
        ocra_err_set(err, errno, "mkdir %s", lb->dir);
        goto fail;
    }
    if (frontends_load(lb, err) < 0)
        goto fail;
    if (c->socket && c->socket[0]) {
        lb->socket = ocra_xstrdup(c->socket);
        if (sock_call(lb->socket, "show info", &reply, err) < 0)
            goto fail;
        free(reply);
        ocra_log_info("lb: attached to haproxy socket=%s", lb->socket);
        return lb;
    }
    lb->socket = ocra_xasprintf("%s/admin.sock", lb->dir);
    if (start_or_adopt(lb, err) < 0)
        goto fail;
    return lb;
fail:
    ocra_err_wrap(err, "load balancer");
    ocra_lb_close(lb, false);
    return NULL;
}

void
ocra_lb_close(struct ocra_lb *lb, bool stop)
{
    if (!lb)
        return;
    if (stop && lb->pid > 0) {
        if (kill((pid_t)lb->pid, SIGTERM) == 0)
            ocra_log_info("lb: stopped haproxy pid=%lld", (long long)lb->pid);
    }
    for (size_t i = 0; i < lb->n; i++)
        free(lb->ids[i]);
    free(lb->ids);
    for (size_t i = 0; i < lb->n_gone; i++)
        free(lb->gone[i]);
    free(lb->gone);
    free(lb->ports);
    free(lb->frontends_path);
    free(lb->socket);
    free(lb->dir);
    pthread_mutex_destroy(&lb->mu);
    free(lb);
}

int64_t
ocra_lb_pid(const struct ocra_lb *lb)
{
    return lb ? lb->pid : 0;
}

/* ---- frontends ------------------------------------------------------------------------------ */

int
ocra_lb_frontend_lookup(const char *dir, const char *key, struct ocra_err *err)
{
    char *path = ocra_xasprintf("%s/frontends", dir), *text = NULL, **ids = NULL;
    int *ports = NULL, port = 0;
    size_t n = 0;

    if (ocra_file_read(path, 1u << 20, &text, NULL, err) < 0) {
        free(path);
        if (err->code != ENOENT)
            return -1;
        memset(err, 0, sizeof(*err));
        return 0;
    }
    if (ocra_lb_frontends_parse(text, &ports, &ids, &n, err) < 0)
        port = -1;
    for (size_t i = 0; i < n; i++) {
        if (!port && !strcmp(ids[i], key))
            port = ports[i];
        free(ids[i]);
    }
    if (port < 0)
        ocra_err_wrap(err, "%s", path);
    free(ids);
    free(ports);
    free(text);
    free(path);
    return port;
}

static int
frontends_save(struct ocra_lb *lb, struct ocra_err *err)
{
    struct ocra_buf b;
    int ret;

    ocra_buf_init(&b);
    ocra_buf_puts(&b, "");
    for (size_t i = 0; i < lb->n; i++)
        ocra_buf_printf(&b, "%d %s\n", lb->ports[i], lb->ids[i]);
    ret = ocra_file_write_atomic(lb->frontends_path, b.data, b.len, 0600, err);
    ocra_buf_fini(&b);
    return ret;
}

int
ocra_lb_frontend_find(struct ocra_lb *lb, const char *key)
{
    int port = 0;

    pthread_mutex_lock(&lb->mu);
    for (size_t i = 0; i < lb->n && !port; i++)
        if (!strcmp(lb->ids[i], key))
            port = lb->ports[i];
    pthread_mutex_unlock(&lb->mu);
    return port;
}

int
ocra_lb_frontend(struct ocra_lb *lb, const char *key, int *port, struct ocra_err *err)
{
    int found = ocra_lb_frontend_find(lb, key), ret = -1;

    if (found) {
        *port = found;
        return 0;
    }
    if (strchr(key, '\n') || !key[0] || key[0] == ' ')
        return ocra_err_set(err, EINVAL, "key '%.80s' cannot name a frontend", key);
    pthread_mutex_lock(&lb->mu);
    for (int p = lb->c.port_min; p <= lb->c.port_max && !found; p++) {
        bool taken = false;

        for (size_t i = 0; i < lb->n && !taken; i++)
            taken = lb->ports[i] == p;
        if (!taken)
            found = p;
    }
    if (!found) {
        ocra_err_set(err, EAGAIN,
                     "every frontend port of lb.port_min..lb.port_max (%d-%d) is taken: widen "
                     "the range",
                     lb->c.port_min, lb->c.port_max);
        goto out;
    }
    lb->ports = ocra_xrealloc(lb->ports, (lb->n + 1) * sizeof(*lb->ports));
    lb->ids = ocra_xrealloc(lb->ids, (lb->n + 1) * sizeof(*lb->ids));
    lb->ports[lb->n] = found;
    lb->ids[lb->n++] = ocra_xstrdup(key);
    if (frontends_save(lb, err) < 0) {
        free(lb->ids[--lb->n]);
        goto out;
    }
    *port = found;
    ret = 0;
out:
    pthread_mutex_unlock(&lb->mu);
    return ret;
}

int
ocra_lb_frontend_release(struct ocra_lb *lb, const char *key, struct ocra_err *err)
{
    int ret = 0;

    pthread_mutex_lock(&lb->mu);
    for (size_t i = 0; i < lb->n; i++) {
        if (strcmp(lb->ids[i], key))
            continue;
        free(lb->ids[i]);
        lb->ids[i] = lb->ids[--lb->n];
        lb->ports[i] = lb->ports[lb->n];
        ret = frontends_save(lb, err);
        break;
    }
    pthread_mutex_unlock(&lb->mu);
    return ret;
}

/* ---- servers -------------------------------------------------------------------------------- */

static int
server_cmd(struct ocra_lb *lb, enum ocra_lb_op op, int port, const char *name, const char *addr,
           int sport, bool *missing, struct ocra_err *err)
{
    char sec[OCRA_LB_NAME_MAX], cmd[256];
    char *reply = NULL;
    int ret = -1;

    snprintf(sec, sizeof(sec), "ocra_%d", port);
    if (missing)
        *missing = false;
    if (ocra_lb_cmd(cmd, sizeof(cmd), op, sec, name, addr, sport, lb->inter_ms, err) < 0 ||
        ocra_lb_call(lb, cmd, &reply, err) < 0)
        goto out;
    if (ocra_lb_reply_failed(reply)) {
        /* HAProxy's words for a server that is not there (2.4..2.8) */
        if (missing && (strstr(reply, "No such server") || strstr(reply, "No such backend")))
            *missing = true;
        ocra_err_set(err, EPROTO, "haproxy '%s': %.200s", cmd, reply);
        goto out;
    }
    ret = 0;
out:
    free(reply);
    return ret;
}

static bool
accepts(const char *addr, int port)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    socklen_t len;
    int fd;
    bool ok;

    if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        len = sizeof(*s4);
    } else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        len = sizeof(*s6);
    } else {
        return false;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    ok = connect(fd, (struct sockaddr *)&ss, len) == 0;
    ocra_fd_close(fd);
    return ok;
}

static bool
is_gone(struct ocra_lb *lb, const char *name)
{
    bool gone = false;

    pthread_mutex_lock(&lb->mu);
    for (size_t i = 0; i < lb->n_gone && !gone; i++)
        gone = !strcmp(lb->gone[i], name);
    pthread_mutex_unlock(&lb->mu);
    return gone;
}

void
ocra_lb_server_forget(struct ocra_lb *lb, const char *prefix, bool whole)
{
    size_t plen = strlen(prefix);

    pthread_mutex_lock(&lb->mu);
    for (size_t i = lb->n_gone; i-- > 0;) {
        if (whole ? strcmp(lb->gone[i], prefix) != 0 : strncmp(lb->gone[i], prefix, plen) != 0)
            continue;
        free(lb->gone[i]);
        lb->gone[i] = lb->gone[--lb->n_gone];
    }
    pthread_mutex_unlock(&lb->mu);
}

/* The server called name in rows: its row, or NULL. */
static const struct ocra_lb_stat *
server_row(const struct ocra_lb_stat *rows, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(rows[i].server, name))
            return &rows[i];
    return NULL;
}

int
ocra_lb_server_up(struct ocra_lb *lb, int port, const char *name, const char *addr, int sport,
                  int wait_ms, bool *enabled, struct ocra_err *err)
{
    struct ocra_lb_stat *rows = NULL;
    const struct ocra_lb_stat *row;
    size_t n = 0;
    int waited = 0, ret = -1;

    if (enabled)
        *enabled = false;
    if (is_gone(lb, name))
        return 0; /* drained for its stop: not back until forgotten */
    if (ocra_lb_stat(lb, port, &rows, &n, err) < 0)
        return -1;
    row = server_row(rows, n, name);
    if (row && strcmp(row->status, "MAINT") != 0) {
        ret = 0; /* enabled already: HAProxy's checks say UP or DOWN from here */
        goto out;
    }
    if (!row && server_cmd(lb, OCRA_LB_ADD, port, name, addr, sport, NULL, err) < 0)
        goto out;
    while (!accepts(addr, sport)) {
        if (waited >= wait_ms) {
            ocra_err_set(err, ETIMEDOUT, "server %s at %s:%d accepted no connection%s", name, addr,
                         sport, wait_ms ? " in time" : " yet");
            goto out;
        }
        sleep_ms(POLL_MS);
        waited += POLL_MS;
    }
    if (server_cmd(lb, OCRA_LB_HEALTH, port, name, NULL, 0, NULL, err) < 0 ||
        server_cmd(lb, OCRA_LB_ENABLE, port, name, NULL, 0, NULL, err) < 0)
        goto out;
    if (enabled)
        *enabled = true;
    ret = 0;
out:
    free(rows);
    return ret;
}

/* The frontend port of the section "ocra_<port>" that holds server name; 0: none. */
static int
port_of(const struct ocra_lb_stat *rows, size_t n, const char *name)
{
    const struct ocra_lb_stat *row = server_row(rows, n, name);
    int64_t port = 0;

    if (row && !strncmp(row->section, "ocra_", 5))
        (void)ocra_parse_i64(row->section + 5, 1, 65535, &port, NULL);
    return (int)port;
}

int
ocra_lb_server_down(struct ocra_lb *lb, const char *name, int wait_ms, int *port,
                    struct ocra_err *err)
{
    struct ocra_lb_stat *rows = NULL;
    size_t n = 0;
    int waited = 0, fport;

    if (port)
        *port = 0;
    if (!is_gone(lb, name)) {
        pthread_mutex_lock(&lb->mu);
        lb->gone = ocra_xrealloc(lb->gone, (lb->n_gone + 1) * sizeof(*lb->gone));
        lb->gone[lb->n_gone++] = ocra_xstrdup(name);
        pthread_mutex_unlock(&lb->mu);
    }
    if (ocra_lb_stat(lb, 0, &rows, &n, err) < 0)
        return -1;
    fport = port_of(rows, n, name);
    free(rows);
    if (!fport)
        return 0;
    if (server_cmd(lb, OCRA_LB_DRAIN, fport, name, NULL, 0, NULL, err) < 0)
        return -1;
    for (;;) {
        const struct ocra_lb_stat *row;
        int64_t busy = 0;

        if (ocra_lb_stat(lb, fport, &rows, &n, err) < 0)
            return -1;
        if ((row = server_row(rows, n, name)))
            busy = (row->scur > 0 ? row->scur : 0) + (row->qcur > 0 ? row->qcur : 0);
        free(rows);
        if (busy == 0)
            break;
        if (waited >= wait_ms) {
            ocra_log_warn("lb port=%d server=%s: %lld sessions still open after %d ms of drain: "
                          "removed",
                          fport, name, (long long)busy, wait_ms);
            break;
        }
        sleep_ms(POLL_MS);
        waited += POLL_MS;
    }
    if (server_cmd(lb, OCRA_LB_MAINT, fport, name, NULL, 0, NULL, err) < 0 ||
        server_cmd(lb, OCRA_LB_DEL, fport, name, NULL, 0, NULL, err) < 0)
        return -1;
    if (port)
        *port = fport;
    return 0;
}

int
ocra_lb_stat(struct ocra_lb *lb, int port, struct ocra_lb_stat **rows, size_t *n,
             struct ocra_err *err)
{
    char *reply = NULL, sec[OCRA_LB_NAME_MAX];
    struct ocra_lb_stat *all = NULL;
    size_t cnt = 0, k = 0;
    int ret;

    if (ocra_lb_call(lb, "show stat", &reply, err) < 0)
        return -1;
    ret = ocra_lb_stat_parse(reply, strlen(reply), &all, &cnt, err);
    free(reply);
    if (ret < 0)
        return ocra_err_wrap(err, "haproxy 'show stat'");
    snprintf(sec, sizeof(sec), "ocra_%d", port);
    for (size_t i = 0; i < cnt; i++)
        if (!port || !strcmp(all[i].section, sec))
            all[k++] = all[i];
    *rows = all;
    *n = k;
    return 0;
}
