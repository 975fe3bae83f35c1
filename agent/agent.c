/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ocra-agent: the entrypoint wrapper of every model image ocra assembles (docs/AGENT.md). It
 * asks the daemon, over the unix socket bind-mounted at /run/ocra, whether the image's model
 * version is still the current one and refuses to start a superseded image unless forced;
 * then it runs the workload command as its child, reports started, heartbeats and completed
 * over the same socket, forwards signals, reaps orphans (it is PID 1 of the container), and
 * exits with the workload's status. The daemon is hostile and may be slow or gone: every
 * socket operation has a deadline, every reply is bounded and parsed strictly, and no failure
 * of the daemon stops or delays the workload beyond those deadlines. Static, libc only.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE 2
#define EXIT_SUPERSEDED 75 /* refused: a newer model version is current */
#define EXIT_AGENT 125     /* the agent itself failed (fork, signalfd) */
#define EXIT_NOEXEC 126    /* the command exists but cannot be run */
#define EXIT_NOTFOUND 127  /* the command was not found */

#define DEFAULT_SOCKET "/run/ocra/agent.sock"
#define CHECK_TIMEOUT_MS 5000  /* the whole check exchange: connect, send, reply */
#define REPORT_TIMEOUT_MS 2000 /* each report exchange */
#define LINE_MAX_OUT 2048      /* a request line (the daemon accepts up to 4096) */
#define REPLY_MAX 1024         /* a reply line, newline included */
#define HEARTBEAT_S 10
#define HEARTBEAT_MAX_S 3600
#define FAILS_QUIET 3 /* consecutive failures after which reports thin out */
#define EVENT_MAX 512
#define MODEL_MAX 128
#define VERSION_MAX 64
#define HOST_MAX 64

static struct {
    const char *sock;
    bool reporting; /* a daemon is expected: the socket existed at the check */
    bool force;
    bool forced;                   /* superseded, and run anyway */
    char current[VERSION_MAX + 1]; /* superseded: the current version, as the daemon said */
    char event[EVENT_MAX + 1], model[MODEL_MAX + 1], version[VERSION_MAX + 1];
    char instance[17], host[HOST_MAX + 1];
    int heartbeat_s;
    unsigned fails, beats;
    int sfd;     /* signalfd of the forwarded signals and SIGCHLD */
    pid_t child; /* the workload; 0 before it starts */
    bool exited; /* the workload has been reaped; status holds its wait status */
    int status;
    int early_sig; /* a terminating signal that came before the workload started */
} A = {.sfd = -1, .heartbeat_s = HEARTBEAT_S};

static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

static void __attribute__((format(printf, 1, 2))) say(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    (void)!write(STDERR_FILENO, "ocra-agent: ", 12);
    (void)!write(STDERR_FILENO, line, (size_t)n);
}

static int64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- signals and the workload ------------------------------------------------------ */

static void
reap(void)
{
    int st;
    pid_t p;

    /* As PID 1 the agent inherits every orphan of the container: reap them all. */
    while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
        if (p == A.child) {
            A.exited = true;
            A.status = st;
        }
    }
}

static void
handle_signals(void)
{
    struct signalfd_siginfo si;

    while (read(A.sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        int sig = (int)si.ssi_signo;

        if (sig == SIGCHLD)
            reap();
        else if (A.child > 0 && !A.exited)
            (void)kill(A.child, sig);
        else if (A.child == 0 && sig != SIGUSR1 && sig != SIGUSR2 && !A.early_sig)
            A.early_sig = sig;
    }
}

/* Waits until fd is ready for events or the deadline passes (errno ETIMEDOUT), forwarding
 * signals meanwhile: a slow daemon never holds a signal back from the workload. */
static int
wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd p[2] = {{.fd = fd, .events = events}, {.fd = A.sfd, .events = POLLIN}};
        int64_t left = deadline - mono_ms();

        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (poll(p, 2, (int)left) < 0 && errno != EINTR)
            return -1;
        if (p[1].revents)
            handle_signals();
        if (p[0].revents)
            return 0;
    }
}

/* ---- the exchange: one request line, one reply line, one connection ---------------- */

static int
connect_daemon(void)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd;

    if (strlen(A.sock) >= sizeof(sa.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(sa.sun_path, A.sock, strlen(A.sock) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    /* A unix connect never waits in non-blocking mode: it fails with EAGAIN when the
     * server's backlog is full. */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int e = errno;

        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Sends line (len bytes, newline included) and reads one reply line into reply (without
 * the newline, NUL-terminated). -1 with errno on failure (EMSGSIZE: reply too long, EPROTO:
 * the daemon closed without a reply). */
static int
exchange(const char *line, size_t len, char *reply, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    size_t off = 0, got = 0;
    int fd = connect_daemon(), e;

    if (fd < 0)
        return -1;
    while (off < len) {
        ssize_t n;

        if (wait_fd(fd, POLLOUT, deadline) < 0)
            goto fail;
        n = send(fd, line + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            goto fail;
        off += n > 0 ? (size_t)n : 0;
    }
    for (;;) {
        ssize_t n;
        char *nl;

        if (wait_fd(fd, POLLIN, deadline) < 0)
            goto fail;
        n = recv(fd, reply + got, REPLY_MAX - got, MSG_DONTWAIT);
        if (n == 0)
            errno = EPROTO;
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            goto fail;
        got += n > 0 ? (size_t)n : 0;
        nl = memchr(reply, '\n', got);
        if (nl) {
            *nl = '\0';
            close(fd);
            return 0;
        }
        if (got == REPLY_MAX) {
            errno = EMSGSIZE;
            goto fail;
        }
    }
fail:
    e = errno;
    close(fd);
    errno = e;
    return -1;
}

/* ---- the reply: a flat JSON object, parsed strictly --------------------------------- */

struct reply {
    bool ok;
    int status; /* 0 current, 1 superseded, 2 unknown, -1 absent */
    long heartbeat_s;
    char current[VERSION_MAX + 1];
    char error[200];
};

struct cursor {
    const char *p, *end;
};

static void
ws(struct cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n'))
        c->p++;
}

static int
hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* A JSON string into out (size cap; longer is cut); \u escapes outside ASCII become '?'. */
static int
jstring(struct cursor *c, char *out, size_t cap)
{
    size_t o = 0;

    if (c->p >= c->end || *c->p++ != '"')
        return -1;
    while (c->p < c->end && *c->p != '"') {
        unsigned char ch = (unsigned char)*c->p++;

        if (ch < 0x20)
            return -1;
        if (ch == '\\') {
            const char *esc = "\"\"\\\\//b\bf\fn\nr\rt\t", *m;

            if (c->p >= c->end)
                return -1;
            if (*c->p == 'u') {
                int v = 0;

                for (int i = 1; i <= 4; i++) {
                    if (c->p + i >= c->end || hexval(c->p[i]) < 0)
                        return -1;
                    v = v * 16 + hexval(c->p[i]);
                }
                c->p += 5;
                ch = v < 0x80 ? (unsigned char)v : '?';
            } else {
                for (m = esc; *m && *m != *c->p; m += 2)
                    ;
                if (!*m)
                    return -1;
                ch = (unsigned char)m[1];
                c->p++;
            }
        }
        if (o + 1 < cap)
            out[o++] = (char)ch;
    }
    if (c->p >= c->end)
        return -1;
    c->p++;
    out[o] = '\0';
    return 0;
}

/* One value: a string (into s, *kind 's'), an integer (into *num, 'n'), true, false or null
 * ('t', 'f', 'z'). Nested values, negative and non-integer numbers are refused: no reply of
 * the protocol has them. */
static int
jvalue(struct cursor *c, char *s, size_t cap, long *num, char *kind)
{
    static const char *const words[] = {"true", "false", "null"};
    static const char kinds[] = {'t', 'f', 'z'};

    if (c->p < c->end && *c->p == '"') {
        *kind = 's';
        return jstring(c, s, cap);
    }
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(words[i]);

        if ((size_t)(c->end - c->p) >= n && memcmp(c->p, words[i], n) == 0) {
            c->p += n;
            *kind = kinds[i];
            return 0;
        }
    }
    *kind = 'n';
    *num = 0;
    if (c->p < c->end && *c->p == '-')
        return -1; /* nothing in a reply is negative */
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
        return -1;
    for (; c->p < c->end && *c->p >= '0' && *c->p <= '9'; c->p++) {
        if (*num > 100000000)
            return -1;
        *num = *num * 10 + (*c->p - '0');
    }
    return 0;
}

/* Copies s into out (size cap), cut to fit. */
static void
copy_cut(char *out, size_t cap, const char *s)
{
    size_t n = strnlen(s, cap - 1);

    memcpy(out, s, n);
    out[n] = '\0';
}

static void
reply_member(struct reply *r, const char *key, const char *s, long num, char kind)
{
    if (strcmp(key, "ok") == 0)
        r->ok = kind == 't';
    else if (strcmp(key, "status") == 0 && kind == 's')
        r->status = strcmp(s, "current") == 0      ? 0
                    : strcmp(s, "superseded") == 0 ? 1
                    : strcmp(s, "unknown") == 0    ? 2
                                                   : -1;
    else if (strcmp(key, "heartbeat_s") == 0 && kind == 'n')
        r->heartbeat_s = num;
    else if (strcmp(key, "current") == 0 && kind == 's')
        copy_cut(r->current, sizeof(r->current), s);
    else if (strcmp(key, "error") == 0 && kind == 's')
        copy_cut(r->error, sizeof(r->error), s);
}

static int
parse_reply(const char *text, struct reply *r)
{
    struct cursor c = {text, text + strlen(text)};
    char key[32], s[256];

    memset(r, 0, sizeof(*r));
    r->status = -1;
    ws(&c);
    if (c.p >= c.end || *c.p++ != '{')
        return -1;
    ws(&c);
    if (c.p < c.end && *c.p == '}')
        c.p++;
    else
        for (;;) {
            long num = 0;
            char kind = 0;

            ws(&c);
            if (jstring(&c, key, sizeof(key)) < 0)
                return -1;
            ws(&c);
            if (c.p >= c.end || *c.p++ != ':')
                return -1;
            ws(&c);
            if (jvalue(&c, s, sizeof(s), &num, &kind) < 0)
                return -1;
            reply_member(r, key, s, num, kind);
            ws(&c);
            if (c.p < c.end && *c.p == ',') {
                c.p++;
                continue;
            }
            if (c.p >= c.end || *c.p++ != '}')
                return -1;
            break;
        }
    ws(&c);
    return c.p == c.end ? 0 : -1;
}

/* ---- requests ---------------------------------------------------------------------- */

/* Appends `,"key":"value"` with JSON escaping to buf (size LINE_MAX_OUT) at *len. */
static void
put_str(char *buf, size_t *len, const char *key, const char *val)
{
    size_t n = *len;

    n += (size_t)snprintf(buf + n, LINE_MAX_OUT - n, ",\"%s\":\"", key);
    for (; *val && n + 8 < LINE_MAX_OUT; val++) {
        unsigned char ch = (unsigned char)*val;

        if (ch == '"' || ch == '\\')
            n += (size_t)snprintf(buf + n, LINE_MAX_OUT - n, "\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            n += (size_t)snprintf(buf + n, LINE_MAX_OUT - n, "\\u%04x", ch);
        else
            buf[n++] = (char)ch;
    }
    n += (size_t)snprintf(buf + n, LINE_MAX_OUT - n, "\"");
    *len = n;
}

/* The members every request carries; the caller appends the rest and the closing brace. */
static size_t
request_head(char *buf, const char *type)
{
    size_t n = (size_t)snprintf(buf, LINE_MAX_OUT, "{\"v\":1");

    put_str(buf, &n, "type", type);
    put_str(buf, &n, "event", A.event);
    put_str(buf, &n, "model", A.model);
    put_str(buf, &n, "version", A.version);
    put_str(buf, &n, "instance", A.instance);
    if (A.host[0])
        put_str(buf, &n, "host", A.host);
    n += (size_t)snprintf(buf + n, LINE_MAX_OUT - n, ",\"time_ms\":%lld", (long long)wall_ms());
    return n;
}

/* Sends a report (type and its extra members, already formatted as `,"k":v...`); returns 0
 * when the daemon acknowledged it. Never fails the workload; failures are counted, and after
 * FAILS_QUIET in a row heartbeats thin out (see maybe_heartbeat). */
static int
report(const char *type, const char *extra)
{
    char line[LINE_MAX_OUT], buf[REPLY_MAX];
    struct reply r;
    size_t n;

    if (!A.reporting)
        return -1;
    n = request_head(line, type);
    n += (size_t)snprintf(line + n, sizeof(line) - n, "%s}\n", extra);
    if (exchange(line, n, buf, REPORT_TIMEOUT_MS) < 0 || parse_reply(buf, &r) < 0 || !r.ok) {
        if (++A.fails == FAILS_QUIET)
            say("%s report failed %u times in a row; reporting less often from now on", type,
                A.fails);
        else if (A.fails < FAILS_QUIET)
            say("%s report not delivered: %s", type,
                errno == ETIMEDOUT ? "the daemon did not answer in time" : "bad or no reply");
        return -1;
    }
    if (A.fails >= FAILS_QUIET)
        say("reports delivered again");
    A.fails = 0;
    return 0;
}

/* ---- the check ----------------------------------------------------------------------- */

enum verdict { V_RUN, V_SUPERSEDED };

static enum verdict
check(void)
{
    char line[LINE_MAX_OUT], buf[REPLY_MAX];
    size_t n = request_head(line, "check");
    struct reply r;

    n += (size_t)snprintf(line + n, sizeof(line) - n, "}\n");
    if (exchange(line, n, buf, CHECK_TIMEOUT_MS) < 0) {
        if (errno == ENOENT) {
            say("no daemon socket at %s: running without ocra (version not checked, nothing "
                "reported)",
                A.sock);
            A.reporting = false;
        } else {
            say("cannot check the model version with the daemon at %s (%s): running the "
                "workload anyway",
                A.sock, errno == ETIMEDOUT ? "no answer in time" : strerror(errno));
            A.fails++;
        }
        return V_RUN;
    }
    if (parse_reply(buf, &r) < 0 || !r.ok || r.status < 0) {
        say("the daemon's answer to the check is unusable (%s): running the workload anyway",
            r.error[0] ? r.error : "malformed reply");
        A.fails++;
        return V_RUN;
    }
    if (r.heartbeat_s >= 1 && r.heartbeat_s <= HEARTBEAT_MAX_S)
        A.heartbeat_s = (int)r.heartbeat_s;
    if (r.status == 1)
        memcpy(A.current, r.current, sizeof(A.current));
    if (r.status == 2)
        say("the daemon does not know event %s: running the workload anyway", A.event);
    return r.status == 1 ? V_SUPERSEDED : V_RUN;
}

/* ---- environment ------------------------------------------------------------------- */

/* Copies env var name into out when it is 1..max bytes of printable ASCII without spaces
 * (model: the model name grammar). */
static bool
env_token(const char *name, char *out, size_t max, bool model)
{
    const char *v = getenv(name);
    size_t n = v ? strlen(v) : 0;

    if (!v || n == 0) {
        say("%s is not set: not an ocra image; running without the daemon", name);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        bool ok = model ? (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                              (i > 0 && (c == '.' || c == '_' || c == '-'))
                        : c > 0x20 && c < 0x7f;

        if (!ok || n > max) {
            say("%s has an invalid value: running without the daemon", name);
            return false;
        }
    }
    memcpy(out, v, n + 1);
    return true;
}

static void
identity(void)
{
    unsigned char rnd[8];
    uint64_t x = (uint64_t)wall_ms() ^ ((uint64_t)getpid() << 32);

    if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) == (ssize_t)sizeof(rnd))
        memcpy(&x, rnd, sizeof(x));
    snprintf(A.instance, sizeof(A.instance), "%016llx", (unsigned long long)x);
    if (gethostname(A.host, sizeof(A.host)) < 0)
        A.host[0] = '\0';
    A.host[HOST_MAX] = '\0';
    for (char *p = A.host; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            A.host[0] = '\0';
}

/* ---- running the workload ----------------------------------------------------------- */

static void __attribute__((noreturn)) child_exec(char **cmd, int errfd)
{
    sigset_t none;
    int e;

    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvp(cmd[0], cmd);
    e = errno;
    (void)!write(errfd, &e, sizeof(e));
    _exit(e == ENOENT ? EXIT_NOTFOUND : EXIT_NOEXEC);
}

/* Forks and execs cmd; returns 0, or the exit status to end with when it could not run. */
static int
start_workload(char **cmd)
{
    int pfd[2], e = 0;
    ssize_t n;

    if (pipe2(pfd, O_CLOEXEC) < 0) {
        say("pipe: %s", strerror(errno));
        return EXIT_AGENT;
    }
    A.child = fork();
    if (A.child < 0) {
        say("fork: %s", strerror(errno));
        A.child = 0;
        return EXIT_AGENT;
    }
    if (A.child == 0)
        child_exec(cmd, pfd[1]);
    close(pfd[1]);
    /* EOF: the exec succeeded (the pipe closed on exec); else the child's errno. */
    do
        n = read(pfd[0], &e, sizeof(e));
    while (n < 0 && errno == EINTR);
    close(pfd[0]);
    if (n != (ssize_t)sizeof(e))
        return 0;
    say("%s: %s", cmd[0], strerror(e));
    return e == ENOENT ? EXIT_NOTFOUND : EXIT_NOEXEC;
}

static void
maybe_heartbeat(int64_t started)
{
    char extra[64];
    unsigned shift = A.fails >= FAILS_QUIET ? A.fails - FAILS_QUIET + 1 : 0;

    A.beats++;
    /* After FAILS_QUIET failures in a row: every 2nd, 4th, ... 32nd beat only. */
    if (shift > 5)
        shift = 5;
    if (A.beats & ((1u << shift) - 1))
        return;
    snprintf(extra, sizeof(extra), ",\"uptime_ms\":%lld", (long long)(mono_ms() - started));
    (void)report("heartbeat", extra);
}

static void
supervise(int64_t started)
{
    int64_t next = started + (int64_t)A.heartbeat_s * 1000;

    reap(); /* a SIGCHLD may have been consumed while reporting "started" */
    while (!A.exited) {
        struct pollfd p = {.fd = A.sfd, .events = POLLIN};
        int64_t now = mono_ms();

        if (now >= next) {
            if (A.reporting)
                maybe_heartbeat(started);
            next = mono_ms() + (int64_t)A.heartbeat_s * 1000;
            continue;
        }
        if (poll(&p, 1, (int)(next - now)) > 0)
            handle_signals();
    }
}

static int
run(char **cmd)
{
    char extra[128];
    int64_t started = mono_ms();
    int rc = start_workload(cmd), code, sig = 0;

    if (rc == 0) {
        snprintf(extra, sizeof(extra), ",\"pid\":%ld%s", (long)A.child,
                 A.forced ? ",\"forced\":true" : "");
        (void)report("started", extra);
        supervise(started);
        if (WIFSIGNALED(A.status))
            sig = WTERMSIG(A.status);
        code = sig ? 128 + sig : WEXITSTATUS(A.status);
    } else {
        code = rc;
    }
    if (sig)
        snprintf(extra, sizeof(extra), ",\"duration_ms\":%lld,\"signal\":%d",
                 (long long)(mono_ms() - started), sig);
    else
        snprintf(extra, sizeof(extra), ",\"duration_ms\":%lld,\"exit_code\":%d",
                 (long long)(mono_ms() - started), code);
    (void)report("completed", extra);
    return code;
}

/* ---- main -------------------------------------------------------------------------- */

static int
usage(FILE *f)
{
    fprintf(f,
            "usage: ocra-agent [--force] [--socket PATH] [--] COMMAND [ARG...]\n"
            "       ocra-agent --version | --help\n"
            "Runs COMMAND, the model image's workload, on behalf of the ocra daemon: checks\n"
            "that the image's model version (OCRA_EVENT_ID, OCRA_MODEL_NAME,\n"
            "OCRA_MODEL_VERSION) is still current, reports start, heartbeats and completion\n"
            "over the daemon's socket (default " DEFAULT_SOCKET ", or OCRA_AGENT_SOCKET),\n"
            "forwards signals, and exits with COMMAND's status (128+N when signal N ended it).\n"
            "  --force         run even when the daemon says the version is superseded\n"
            "                  (also OCRA_AGENT_FORCE=1)\n"
            "  --socket PATH   the daemon's socket\n"
            "Exit status: COMMAND's; %d superseded and not forced; %d the agent failed;\n"
            "%d COMMAND cannot be run; %d COMMAND not found; %d usage. See docs/AGENT.md.\n",
            EXIT_SUPERSEDED, EXIT_AGENT, EXIT_NOEXEC, EXIT_NOTFOUND, EXIT_USAGE);
    return f == stderr ? EXIT_USAGE : 0;
}

/* Parses the options; returns the index of COMMAND, or -1 after printing usage. */
static int
parse_args(int argc, char **argv)
{
    int i = 1;

    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--") == 0)
            return i + 1 < argc ? i + 1 : -1;
        if (strcmp(argv[i], "--force") == 0)
            A.force = true;
        else if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc)
            A.sock = argv[++i];
        else
            return -1;
    }
    return i < argc ? i : -1;
}

static int
setup_signals(void)
{
    sigset_t set;

    sigemptyset(&set);
    for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
        sigaddset(&set, forwarded[i]);
    sigaddset(&set, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        return -1;
    A.sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    return A.sfd < 0 ? -1 : 0;
}

int
main(int argc, char **argv)
{
    const char *force = getenv("OCRA_AGENT_FORCE");
    int cmd;

    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("ocra-agent %s (protocol 1)\n", OCRA_VERSION);
        return 0;
    }
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0))
        return usage(stdout);
    cmd = parse_args(argc, argv);
    if (cmd < 0)
        return usage(stderr);
    if (!A.sock)
        A.sock = getenv("OCRA_AGENT_SOCKET") ? getenv("OCRA_AGENT_SOCKET") : DEFAULT_SOCKET;
    A.force = A.force || (force && strcmp(force, "1") == 0);
    if (setup_signals() < 0) {
        say("signals: %s", strerror(errno));
        return EXIT_AGENT;
    }
    A.reporting = env_token("OCRA_EVENT_ID", A.event, EVENT_MAX, false) &&
                  env_token("OCRA_MODEL_NAME", A.model, MODEL_MAX, true) &&
                  env_token("OCRA_MODEL_VERSION", A.version, VERSION_MAX, false);
    identity();
    if (A.reporting && check() == V_SUPERSEDED) {
        if (!A.force) {
            say("refusing to start: model %s version %s is superseded on-chain by version %s "
                "(event %s); set OCRA_AGENT_FORCE=1 or pass --force to run it anyway",
                A.model, A.version, A.current[0] ? A.current : "(not said)", A.event);
            return EXIT_SUPERSEDED;
        }
        say("model %s version %s is superseded by %s; running it anyway (forced)", A.model,
            A.version, A.current[0] ? A.current : "(not said)");
        A.forced = true;
    }
    handle_signals();
    if (A.early_sig) {
        say("signal %d before the workload started: not starting it", A.early_sig);
        return 128 + A.early_sig;
    }
    return run(argv + cmd);
}
