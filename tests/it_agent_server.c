/* SPDX-License-Identifier: Apache-2.0 */
/*
 * it_agent_server: the daemon side of the agent protocol for tests/it_agent.sh, a real
 * src/agentd server whose check callback gives a fixed verdict.
 *
 *   it_agent_server DIR current|unknown|superseded:VERSION|fail|mute|garbage HEARTBEAT_S EVENT
 *
 * Serves one run, replica 0 of EVENT, whose directory is DIR: the server's directory is DIR's
 * parent (it must exist, belong to this user and be writable by it only), the run's name DIR's
 * last component. Creates DIR (mode 0750, group 65532, the sandbox's gid) and DIR/agent.sock
 * (0660), logs each request as one line to stdout and to DIR/log (readable by the workload in
 * the container, which waits on it): `check event=E model=M version=V uid=U`, `started pid=P
 * forced=0|1 uid=U`, `heartbeat uptime_ms=N uid=U`, `completed exit_code=C signal=S
 * duration_ms=N uid=U`. `fail` makes the check callback fail; `mute` listens without agentd
 * and accepts connections that never get an answer; `garbage` answers each with an overlong
 * line of broken JSON. Runs until SIGTERM or SIGINT, then stops the server (which removes the
 * socket and keeps DIR) and exits 0.
 */
#include "agentd/agentd.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int log_fd = -1;
static const char *verdict;

static void
log_line(const struct ocra_agentd_msg *m, const struct ocra_agentd_peer *peer)
{
    char line[1024];
    int n = 0;

    switch (m->type) {
    case OCRA_AGENTD_CHECK:
        n = snprintf(line, sizeof(line), "check event=%s model=%s version=%s", m->event, m->model,
                     m->version);
        break;
    case OCRA_AGENTD_STARTED:
        n = snprintf(line, sizeof(line), "started pid=%lld forced=%d", (long long)m->pid,
                     m->forced);
        break;
    case OCRA_AGENTD_HEARTBEAT:
        n = snprintf(line, sizeof(line), "heartbeat uptime_ms=%lld", (long long)m->uptime_ms);
        if (m->has_load && n > 0 && (size_t)n < sizeof(line))
            n += snprintf(line + n, sizeof(line) - (size_t)n, " load=%lld", (long long)m->load);
        break;
    case OCRA_AGENTD_COMPLETED:
        n = snprintf(line, sizeof(line), "completed exit_code=%d signal=%d duration_ms=%lld",
                     m->exit_code, m->signal, (long long)m->duration_ms);
        break;
    case OCRA_AGENTD_REFUSED:
        n = snprintf(line, sizeof(line), "refused reason=%s current=%s", m->reason, m->current);
        break;
    }
    if (n < 0 || (size_t)n >= sizeof(line) - 64)
        return;
    n += snprintf(line + n, sizeof(line) - (size_t)n, " instance=%s uid=%u\n", m->instance,
                  (unsigned)peer->uid);
    (void)!write(STDOUT_FILENO, line, (size_t)n);
    (void)!write(log_fd, line, (size_t)n);
}

static int
on_check(void *arg, const struct ocra_agentd_msg *m, const struct ocra_agentd_peer *peer,
         struct ocra_agentd_answer *a)
{
    (void)arg;
    log_line(m, peer);
    if (strcmp(verdict, "fail") == 0)
        return -1;
    if (strcmp(verdict, "unknown") == 0)
        a->verdict = OCRA_AGENTD_UNKNOWN;
    if (strncmp(verdict, "superseded:", 11) == 0) {
        a->verdict = OCRA_AGENTD_SUPERSEDED;
        snprintf(a->current, sizeof(a->current), "%.64s", verdict + 11);
    }
    return 0;
}

static void
on_report(void *arg, const struct ocra_agentd_msg *m, const struct ocra_agentd_peer *peer)
{
    (void)arg;
    log_line(m, peer);
}

/* mute: a socket that accepts and never answers. Returns the listening fd. */
static int
mute_listen(const char *dir)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/agent.sock", dir);
    (void)unlink(sa.sun_path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        chown(sa.sun_path, (uid_t)-1, 65532) < 0 || chmod(sa.sun_path, 0660) < 0 ||
        listen(fd, 16) < 0) {
        perror("it_agent_server: mute socket");
        exit(1);
    }
    return fd;
}

/* garbage: answers each connection with a line that starts like a superseded verdict but is
 * cut JSON and overlong, then closes it. */
static void
garbage_answer(int fd)
{
    char line[2100];
    int n = snprintf(line, sizeof(line), "{\"v\":1,\"ok\":true,\"status\":\"superseded\",");

    memset(line + n, 'x', sizeof(line) - (size_t)n - 1);
    line[sizeof(line) - 1] = '\n';
    (void)!write(fd, line, sizeof(line));
    close(fd);
}

static void
mute_serve(const char *dir, const sigset_t *stop, bool garbage)
{
    int lfd = mute_listen(dir), held[64], n = 0;
    struct timespec tick = {0, 100000000};
    char path[256];

    (void)fcntl(lfd, F_SETFL, O_NONBLOCK);
    printf("ready (mute)\n");
    fflush(stdout);
    while (sigtimedwait(stop, NULL, &tick) < 0) {
        int fd = accept(lfd, NULL, NULL);

        if (fd >= 0 && garbage)
            garbage_answer(fd);
        else if (fd >= 0 && n < 64)
            held[n++] = fd; /* held open, never read, never answered */
        else if (fd >= 0)
            close(fd);
    }
    snprintf(path, sizeof(path), "%s/agent.sock", dir);
    (void)unlink(path);
    for (int i = 0; i < n; i++)
        close(held[i]);
    close(lfd);
}

int
main(int argc, char **argv)
{
    struct ocra_agentd_callbacks cb = {.check = on_check, .report = on_report};
    struct ocra_agentd_options opt = {0};
    struct ocra_err err = {0};
    struct ocra_agentd *d = NULL;
    char path[512], *base, *name, *dir = NULL;
    sigset_t stop;
    int sig;

    if (argc != 5 || argv[1][0] != '/' || !strrchr(argv[1], '/')[1]) {
        fprintf(stderr, "usage: it_agent_server /ABSOLUTE/DIR VERDICT HEARTBEAT_S EVENT\n");
        return 2;
    }
    verdict = argv[2];
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    base = strdup(argv[1]);
    name = strrchr(base, '/');
    *name++ = '\0';
    opt.dir = base;
    opt.gid = 65532;
    opt.heartbeat_s = (int)strtol(argv[3], NULL, 10);
    if (mkdir(argv[1], 0750) < 0 && errno != EEXIST) {
        perror("it_agent_server: mkdir");
        return 1;
    }
    snprintf(path, sizeof(path), "%s/log", argv[1]);
    log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0 || chown(argv[1], (uid_t)-1, 65532) < 0 || chmod(argv[1], 0750) < 0) {
        perror("it_agent_server: log");
        return 1;
    }
    if (strcmp(verdict, "mute") == 0 || strcmp(verdict, "garbage") == 0) {
        mute_serve(argv[1], &stop, strcmp(verdict, "garbage") == 0);
        return 0;
    }
    if (ocra_agentd_start(&opt, &cb, &d, &err) < 0 ||
        ocra_agentd_run_add(d, name, argv[4], 0, &dir, &err) < 0) {
        fprintf(stderr, "it_agent_server: %s\n", err.msg);
        ocra_agentd_stop(d);
        return 1;
    }
    printf("ready %s/agent.sock\n", dir);
    fflush(stdout);
    sigwait(&stop, &sig);
    ocra_agentd_stop(d);
    printf("stopped\n");
    free(dir);
    free(base);
    return 0;
}
