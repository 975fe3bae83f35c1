/* SPDX-License-Identifier: Apache-2.0 */
/*
 * base_file.c: whole-file reads with a size bound, atomic writes, the clocks, sleeping, the
 * pacing of requests (rate limit, retry backoff), and processes known by pid and start time.
 */
#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void
ocra_fd_close(int fd)
{
    int saved = errno;

    if (fd >= 0)
        (void)close(fd);
    errno = saved;
}

int
ocra_file_read(const char *path, size_t max, char **out, size_t *len, struct ocra_err *err)
{
    struct ocra_buf b;
    int fd = -1, ret = -1;

    ocra_buf_init(&b);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        ocra_err_sys(err, "open %s", path);
        goto out;
    }
    for (;;) {
        ssize_t n;

        ocra_buf_reserve(&b, 65536);
        n = read(fd, b.data + b.len, 65536);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ocra_err_sys(err, "read %s", path);
            goto out;
        }
        if (n == 0)
            break;
        b.len += (size_t)n;
        if (b.len > max) {
            ocra_err_set(err, EFBIG, "%s: larger than %zu bytes", path, max);
            goto out;
        }
    }
    if (len)
        *len = b.len;
    *out = ocra_buf_take(&b);
    ret = 0;
out:
    ocra_buf_fini(&b);
    ocra_fd_close(fd);
    return ret;
}

int
ocra_write_all(int fd, const void *data, size_t n)
{
    const char *p = data;

    while (n > 0) {
        ssize_t w = write(fd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int
ocra_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode,
                       struct ocra_err *err)
{
    /* the thread's own temporary: threads of a process may write one path at once */
    char *tmp = ocra_xasprintf("%s.tmp.%ld.%ld", path, (long)getpid(), (long)gettid());
    int fd = -1, ret = -1;

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
    if (fd < 0) {
        ocra_err_sys(err, "create %s", tmp);
        goto out;
    }
    if (ocra_write_all(fd, data, len) < 0) {
        ocra_err_sys(err, "write %s", tmp);
        goto out;
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        fd = -1;
        ocra_err_sys(err, "write %s", tmp);
        goto out;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        ocra_err_sys(err, "rename %s to %s", tmp, path);
        goto out;
    }
    ret = 0;
out:
    if (ret < 0)
        (void)unlink(tmp);
    ocra_fd_close(fd);
    free(tmp);
    return ret;
}

uint64_t
ocra_time_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t
ocra_time_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *
ocra_time_iso8601(int64_t ms, char *out, size_t outsz)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    char date[24];

    if (!gmtime_r(&secs, &tm) || strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
        date[0] = '\0';
    (void)snprintf(out, outsz, "%s.%03dZ", date, (int)(ms % 1000));
    return out;
}

void
ocra_sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    if (ms <= 0)
        return;
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* ---- processes ------------------------------------------------------------------------- */

int
ocra_proc_start(int64_t pid, int64_t *start, struct ocra_err *err)
{
    char path[48], *text = NULL, *p;
    int64_t v = 0;
    int ret = -1;

    (void)snprintf(path, sizeof(path), "/proc/%lld/stat", (long long)pid);
    if (ocra_file_read(path, 4096, &text, NULL, err) < 0) {
        if (err->code == ENOENT)
            err->code = ESRCH;
        return -1;
    }
    /* "PID (COMM) S PPID ...": COMM may hold anything, so fields count from its last ')' */
    if (!(p = strrchr(text, ')')) || p[1] != ' ') {
        ocra_err_set(err, EPROTO, "%s: no command name", path);
        goto out;
    }
    p += 2;
    if (*p == 'Z' || *p == 'X') {
        ocra_err_set(err, ESRCH, "process %lld has exited", (long long)pid);
        goto out;
    }
    for (int field = 3; field < 22 && p; field++)
        p = strchr(p, ' ') ? strchr(p, ' ') + 1 : NULL;
    if (!p || *p < '0' || *p > '9') {
        ocra_err_set(err, EPROTO, "%s: no start time", path);
        goto out;
    }
    for (; *p >= '0' && *p <= '9' && v < INT64_MAX / 10 - 9; p++)
        v = v * 10 + (*p - '0');
    *start = v;
    ret = 0;
out:
    free(text);
    return ret;
}

int
ocra_proc_self(struct ocra_proc_id *out, struct ocra_err *err)
{
    char host[72] = "", ns[64] = "", *boot = NULL;
    struct ocra_proc_id id = {.pid = getpid()};
    ssize_t n;
    int w;

    if (gethostname(host, sizeof(host) - 1) < 0)
        return ocra_err_sys(err, "gethostname");
    if (ocra_file_read("/proc/sys/kernel/random/boot_id", 64, &boot, NULL, err) < 0)
        return -1;
    boot[strcspn(boot, "\n")] = '\0';
    /* a pid means one process only inside its pid namespace */
    n = readlink("/proc/self/ns/pid", ns, sizeof(ns) - 1);
    ns[n > 0 ? n : 0] = '\0';
    w = snprintf(id.scope, sizeof(id.scope), "%s/%s/%s", host, boot, ns);
    free(boot);
    if (w < 0 || (size_t)w >= sizeof(id.scope))
        return ocra_err_set(err, ENAMETOOLONG, "process scope of host %s", host);
    if (ocra_proc_start(id.pid, &id.start, err) < 0)
        return ocra_err_wrap(err, "this process");
    *out = id;
    return 0;
}

bool
ocra_proc_gone(const struct ocra_proc_id *self, const char *scope, int64_t pid, int64_t start)
{
    struct ocra_err err = {0};
    int64_t now = 0;

    if (!self || !*self->scope || !scope || strcmp(scope, self->scope) != 0 || pid <= 0)
        return false; /* another machine, boot or namespace: it may run; its lease tells */
    if (pid == self->pid)
        return start != self->start;
    if (ocra_proc_start(pid, &now, &err) < 0)
        return err.code == ESRCH;
    return now != start;
}

void
ocra_pacer_init(struct ocra_pacer *p, int rate_limit, long backoff_ms, long backoff_max_ms)
{
    p->rate_limit = rate_limit > 0 ? rate_limit : 0;
    p->backoff_ms = backoff_ms > 0 ? backoff_ms : 250;
    p->backoff_max_ms = backoff_max_ms > 0 ? backoff_max_ms : 8000;
    p->next_slot_ns = 0;
    p->jitter = (unsigned)ocra_time_mono_ns();
}

void
ocra_pacer_wait(struct ocra_pacer *p)
{
    uint64_t now = ocra_time_mono_ns();

    if (!p->rate_limit)
        return;
    if (p->next_slot_ns > now)
        ocra_sleep_ms((int64_t)((p->next_slot_ns - now + 999999u) / 1000000u));
    p->next_slot_ns = ocra_time_mono_ns() + 1000000000u / (unsigned)p->rate_limit;
}

long
ocra_pacer_backoff_ms(struct ocra_pacer *p, int attempt)
{
    long ms = p->backoff_ms;

    for (int i = 1; i < attempt && ms < p->backoff_max_ms; i++)
        ms *= 2;
    if (ms > p->backoff_max_ms)
        ms = p->backoff_max_ms;
    return ms / 2 + (long)(rand_r(&p->jitter) % (unsigned)(ms / 2 + 1));
}

/* ---- running a program ------------------------------------------------------------------ */

extern char **environ;

/* Feeds in to fd_in and reads fd_out into *buf until both are done or the deadline passes. */
static int
proc_io(int fd_in, int fd_out, const char *in, struct ocra_buf *b, size_t max, int64_t deadline,
        const char *name, struct ocra_err *err)
{
    size_t in_len = in ? strlen(in) : 0, in_off = 0;

    if (in_len == 0) {
        close(fd_in);
        fd_in = -1;
    }
    while (fd_out >= 0) {
        struct pollfd p[2] = {{.fd = fd_out, .events = POLLIN}, {.fd = fd_in, .events = POLLOUT}};
        int64_t left = deadline - (int64_t)(ocra_time_mono_ns() / 1000000);
        char chunk[4096];
        ssize_t n;

        if (left <= 0)
            return ocra_err_set(err, ETIMEDOUT, "%s: no answer within the time allowed", name);
        if (poll(p, fd_in >= 0 ? 2 : 1, (int)(left > 1000 ? 1000 : left)) < 0) {
            if (errno == EINTR)
                continue;
            return ocra_err_sys(err, "%s: poll", name);
        }
        if (fd_in >= 0 && (p[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
            n = write(fd_in, in + in_off, in_len - in_off);
            if (n > 0)
                in_off += (size_t)n;
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                in_off = in_len; /* it stopped reading: its answer says what it makes of it */
            if (in_off == in_len) {
                close(fd_in);
                fd_in = -1;
            }
        }
        if (!(p[0].revents & (POLLIN | POLLERR | POLLHUP)))
            continue;
        n = read(fd_out, chunk, sizeof(chunk));
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n < 0)
            return ocra_err_sys(err, "%s: read", name);
        if (n == 0)
            break;
        if (b->len + (size_t)n > max)
            return ocra_err_set(err, EFBIG, "%s: answer longer than %zu bytes", name, max);
        ocra_buf_append(b, chunk, (size_t)n);
    }
    if (fd_in >= 0)
        close(fd_in);
    return 0;
}

int
ocra_proc_run(char *const argv[], const char *in, size_t max, int64_t timeout_ms, char **out,
              size_t *out_len, int *status, struct ocra_err *err)
{
    int to_child[2] = {-1, -1}, from_child[2] = {-1, -1}, wst = 0, rc, ret = -1;
    int64_t deadline = (int64_t)(ocra_time_mono_ns() / 1000000) + timeout_ms;
    posix_spawn_file_actions_t fa;
    sigset_t pipe_set, pending, old_mask;
    bool pipe_was_pending;
    struct ocra_buf b;
    pid_t pid = -1;

    ocra_buf_init(&b);
    if (pipe2(to_child, O_CLOEXEC) < 0 || pipe2(from_child, O_CLOEXEC) < 0) {
        ocra_err_sys(err, "%s: pipe", argv[0]);
        goto out;
    }
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, to_child[0], STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, from_child[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(to_child[0]);
    close(from_child[1]);
    to_child[0] = from_child[1] = -1;
    if (rc != 0) {
        pid = -1;
        errno = rc;
        ocra_err_sys(err, "%s", argv[0]);
        goto out;
    }
    (void)fcntl(to_child[1], F_SETFL, O_NONBLOCK);
    /* A program that does not read its input raises SIGPIPE at our write: held back in this
     * thread only, and taken if it came (the process's disposition is the caller's). */
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    pipe_was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
    rc = proc_io(to_child[1], from_child[0], in, &b, max, deadline, argv[0], err);
    to_child[1] = -1;
    sigpending(&pending);
    if (!pipe_was_pending && sigismember(&pending, SIGPIPE))
        (void)sigtimedwait(&pipe_set, NULL, &(struct timespec){0, 0});
    pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
    if (rc < 0)
        kill(pid, SIGKILL);
    while (waitpid(pid, &wst, 0) < 0 && errno == EINTR)
        ;
    pid = -1;
    if (rc < 0)
        goto out;
    *status = WIFEXITED(wst) ? WEXITSTATUS(wst) : 128 + WTERMSIG(wst);
    *out_len = b.len;
    *out = ocra_buf_take(&b);
    ret = 0;
out:
    for (int i = 0; i < 2; i++) {
        if (to_child[i] >= 0)
            close(to_child[i]);
        if (from_child[i] >= 0)
            close(from_child[i]);
    }
    if (b.data)
        ocra_secure_free(b.data, b.cap);
    return ret;
}
