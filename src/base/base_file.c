/* SPDX-License-Identifier: Apache-2.0 */
/*
 * base_file.c: whole-file reads with a size bound, atomic writes, the clocks, sleeping, the
 * pacing of requests (rate limit, retry backoff), and processes known by pid and start time.
 */
#include "base/base.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
