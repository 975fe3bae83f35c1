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
#include "agent_proto.h"

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
#include <sys/stat.h>
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
#define HEARTBEAT_S 10
#define HEARTBEAT_MAX_S 3600
#define FAILS_QUIET 3 /* consecutive failures after which reports thin out */
#define EVENT_MAX 512
#define MODEL_MAX 128
#define VERSION_MAX OCRA_AGENT_VERSION_MAX
#define HOST_MAX 64

static struct {
    const char *sock;
    bool reporting; /* a daemon is expected: the socket existed at the check */
    bool force;
    bool forced; /* superseded, and run anyway */
    /* superseded: the current version, as the daemon said */
    char current[OCRA_AGENT_VERSION_MAX + 1];
    char event[EVENT_MAX + 1], model[MODEL_MAX + 1], version[VERSION_MAX + 1];
    char instance[17], host[HOST_MAX + 1];
    int heartbeat_s;
    unsigned fails, beats;
    int sfd;     /* signalfd of the forwarded signals and SIGCHLD */
    pid_t child; /* the workload; 0 before it starts */
    bool exited; /* the workload has been reaped; status holds its wait status */
    int status;
    int early_sig;    /* a terminating signal that came before the workload started */
    bool load_warned; /* the load file held bad content once: said so */
} A = {.sfd = -1, .heartbeat_s = HEARTBEAT_S};

static const int forwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
say(const char *fmt, ...)
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

/* Sends line (len bytes, newline included) and reads one reply line into reply (size
 * OCRA_AGENT_REPLY_MAX; without the newline, NUL-terminated, *reply_len bytes). -1 with errno
 * on failure (ETIMEDOUT, EMSGSIZE: reply too long, EPROTO: closed without a reply). */
static int
exchange(const char *line, size_t len, char *reply, size_t *reply_len, int timeout_ms)
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
        n = recv(fd, reply + got, OCRA_AGENT_REPLY_MAX - got, MSG_DONTWAIT);
        if (n == 0)
            errno = EPROTO;
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            goto fail;
        got += n > 0 ? (size_t)n : 0;
        nl = memchr(reply, '\n', got);
        if (nl) {
            *nl = '\0';
            *reply_len = (size_t)(nl - reply);
            close(fd);
            return 0;
        }
        if (got == OCRA_AGENT_REPLY_MAX) {
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

/* ---- requests ---------------------------------------------------------------------- */

/* A whole request: the members every request carries, then extra (`,"k":v...`). */
static void
request(struct ocra_agent_line *l, const char *type, const char *extra)
{
    memset(l, 0, sizeof(*l));
    ocra_agent_line_printf(l, "{\"v\":1");
    ocra_agent_line_str(l, "type", type);
    ocra_agent_line_str(l, "event", A.event);
    ocra_agent_line_str(l, "model", A.model);
    ocra_agent_line_str(l, "version", A.version);
    ocra_agent_line_str(l, "instance", A.instance);
    if (A.host[0])
        ocra_agent_line_str(l, "host", A.host);
    ocra_agent_line_printf(l, ",\"time_ms\":%lld%s}\n", (long long)wall_ms(), extra);
}

/* One request and its reply, parsed. Returns 0, or -1 with *why saying what failed and *eno
 * the errno of a failed exchange (0 when the failure was the reply's). */
static int
ask(const char *type, const char *extra, int timeout_ms, struct ocra_agent_reply *r,
    const char **why, int *eno)
{
    char buf[OCRA_AGENT_REPLY_MAX];
    struct ocra_agent_line l;
    size_t n = 0;

    *eno = 0;
    request(&l, type, extra);
    if (l.full) {
        *why = "request too long";
        return -1;
    }
    if (exchange(l.buf, l.n, buf, &n, timeout_ms) < 0) {
        *eno = errno;
        *why = errno == ETIMEDOUT ? "no answer in time" : strerror(errno);
        return -1;
    }
    if (ocra_agent_reply_parse(buf, n, r) < 0) { /* n, not strlen: a NUL is refused */
        *why = "malformed reply";
        return -1;
    }
    if (!r->ok) {
        *why = r->error[0] ? r->error : "error reply";
        return -1;
    }
    return 0;
}

/* Sends a report; returns 0 when the daemon acknowledged it. Never fails the workload:
 * failures are counted, and after FAILS_QUIET in a row heartbeats thin out (see
 * maybe_heartbeat). */
static int
report(const char *type, const char *extra)
{
    const char *why = NULL;
    struct ocra_agent_reply r;
    int eno;

    if (!A.reporting)
        return -1;
    if (ask(type, extra, REPORT_TIMEOUT_MS, &r, &why, &eno) < 0) {
        if (++A.fails == FAILS_QUIET)
            say("%s report not delivered (%s), %u failures in a row: reporting less often from "
                "now on",
                type, why, A.fails);
        else if (A.fails < FAILS_QUIET)
            say("%s report not delivered: %s", type, why);
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
    const char *why = NULL;
    struct ocra_agent_reply r;
    int eno = 0;

    if (ask("check", "", CHECK_TIMEOUT_MS, &r, &why, &eno) < 0 ||
        r.status == OCRA_AGENT_NO_STATUS) {
        if (!why) {
            why = "no status in the reply";
        } else if (eno == ENOENT) {
            say("no daemon socket at %s: running without ocra (version not checked, nothing "
                "reported)",
                A.sock);
            A.reporting = false;
            return V_RUN;
        }
        say("cannot check the model version with the daemon at %s (%s): running the workload "
            "anyway",
            A.sock, why);
        A.fails++;
        return V_RUN;
    }
    if (r.heartbeat_s >= 1 && r.heartbeat_s <= HEARTBEAT_MAX_S)
        A.heartbeat_s = (int)r.heartbeat_s;
    if (r.status == OCRA_AGENT_SUPERSEDED)
        memcpy(A.current, r.current, sizeof(A.current));
    if (r.status == OCRA_AGENT_UNKNOWN)
        say("the daemon does not know event %s: running the workload anyway", A.event);
    return r.status == OCRA_AGENT_SUPERSEDED ? V_SUPERSEDED : V_RUN;
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

static void child_exec(char **cmd, int errfd) __attribute__((noreturn));

static void
child_exec(char **cmd, int errfd)
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

    /* The workload reports its load through this file (docs/AGENT.md); a stale one from an
     * earlier run of the container is not its word. */
    (void)unlink(OCRA_AGENT_LOAD_FILE);
    if (setenv("OCRA_LOAD_FILE", OCRA_AGENT_LOAD_FILE, 1) < 0) {
        say("setenv: %s", strerror(errno));
        return EXIT_AGENT;
    }

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

/* The workload's load, from OCRA_AGENT_LOAD_FILE: 0 and *load, or -1 when it reports none
 * (no file: quietly; bad content: a warning, once per agent run). The read is bounded and never
 * blocks (O_NONBLOCK, a regular file only). */
static int
read_load(long long *load)
{
    char buf[OCRA_AGENT_LOAD_TEXT_MAX + 1];
    const char *why = NULL;
    struct stat st;
    ssize_t n = -1;
    int fd = open(OCRA_AGENT_LOAD_FILE, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0 && errno == ENOENT)
        return -1;
    if (fd < 0)
        why = strerror(errno);
    else if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        why = "not a regular file";
    else if ((n = read(fd, buf, sizeof(buf))) < 0)
        why = strerror(errno);
    else if (n == 0)
        why = ""; /* being rewritten, or nothing said yet: no load, no warning */
    else if ((size_t)n > OCRA_AGENT_LOAD_TEXT_MAX)
        why = "longer than 32 bytes";
    else if (ocra_agent_load_parse(buf, (size_t)n, load) < 0)
        why = "not a whole number 0..1000000000";
    if (fd >= 0)
        close(fd);
    if (why && why[0] && !A.load_warned) {
        say("load file %s: %s: heartbeats carry no load until it is fixed", OCRA_AGENT_LOAD_FILE,
            why);
        A.load_warned = true;
    }
    return why ? -1 : 0;
}

static void
maybe_heartbeat(int64_t started)
{
    char extra[96];
    long long load = 0;
    int n;
    unsigned shift = A.fails >= FAILS_QUIET ? A.fails - FAILS_QUIET + 1 : 0;

    A.beats++;
    /* After FAILS_QUIET failures in a row: every 2nd, 4th, ... 32nd beat only. */
    if (shift > 5)
        shift = 5;
    if (A.beats & ((1u << shift) - 1))
        return;
    n = snprintf(extra, sizeof(extra), ",\"uptime_ms\":%lld", (long long)(mono_ms() - started));
    if (read_load(&load) == 0)
        snprintf(extra + n, sizeof(extra) - (size_t)n, ",\"load\":%lld", load);
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

/* Tells the daemon why the workload will not run, before the exit: the daemon's answer
 * comes after it has kept the refusal, so the complete stage that sees the exit knows why. */
static void
refused(void)
{
    struct ocra_agent_line l = {0};

    ocra_agent_line_str(&l, "reason", "superseded");
    if (A.current[0])
        ocra_agent_line_str(&l, "current", A.current);
    if (!l.full)
        (void)report("refused", l.buf);
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
            "COMMAND may report its load (requests in flight + queued) as a number in the file\n"
            "$OCRA_LOAD_FILE (" OCRA_AGENT_LOAD_FILE "); each heartbeat carries it.\n"
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
            refused();
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
