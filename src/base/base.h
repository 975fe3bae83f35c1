/* SPDX-License-Identifier: Apache-2.0 */
/*
 * base: what every other module stands on. The error object, logging, checked allocation,
 * growable buffers, hex, JSON helpers over jansson (whose json_t is ocra's JSON tree type),
 * sha256 and keccak256, checked integer parsing, files, and time.
 */
#ifndef OCRA_BASE_H
#define OCRA_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define OCRA_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* ---- errors ---------------------------------------------------------------------------- */

/*
 * A fallible function takes `struct ocra_err *err` last and returns 0/-1 or pointer/NULL.
 * `code` is an errno value (EINVAL bad input, EPROTO malformed peer reply, ...); `msg` reads
 * "context: context: cause", whole up to OCRA_ERR_MAX - 1 bytes; `cause` is where the root
 * cause (what ocra_err_set wrote) starts in `msg`. `err` is untouched on success and may be
 * NULL (nothing recorded).
 */
#define OCRA_ERR_MAX 4096

struct ocra_err {
    int code;
    char msg[OCRA_ERR_MAX];
    unsigned cause;
};

/* Fills err with code and the formatted message (the root cause); returns -1. */
int ocra_err_set(struct ocra_err *err, int code, const char *fmt, ...) OCRA_PRINTF(3, 4);
/* Like ocra_err_set with code = errno, appending ": strerror(errno)"; returns -1. */
int ocra_err_sys(struct ocra_err *err, const char *fmt, ...) OCRA_PRINTF(2, 3);
/* Prefixes err->msg with "context: "; when the whole would not fit, the context is cut, never
 * the root cause. Returns -1. */
int ocra_err_wrap(struct ocra_err *err, const char *fmt, ...) OCRA_PRINTF(2, 3);
/* Copies src (code, message, cause) into err; returns -1. */
int ocra_err_copy(struct ocra_err *err, const struct ocra_err *src);
/* The root cause: borrowed from err->msg. */
const char *ocra_err_cause(const struct ocra_err *err);
/*
 * The message cause first, for the journal, the API and on-chain reasons:
 * "cause (context: context)", or the cause alone when there is no context. Cut to cap - 1
 * bytes with "..." at the end (never inside a UTF-8 sequence). Returns out.
 */
char *ocra_err_text(const struct ocra_err *err, char *out, size_t cap);

/* ---- logging --------------------------------------------------------------------------- */

enum ocra_log_level { OCRA_LOG_ERROR, OCRA_LOG_WARN, OCRA_LOG_INFO, OCRA_LOG_DEBUG };
enum ocra_log_format { OCRA_LOG_TEXT, OCRA_LOG_JSON };

void ocra_log_setup(enum ocra_log_level level, enum ocra_log_format format);
/* "text" or "json"; returns -1 on anything else. */
int ocra_log_format_parse(const char *s, enum ocra_log_format *out);
/* "error", "warn", "info", "debug"; returns -1 on anything else. */
int ocra_log_level_parse(const char *s, enum ocra_log_level *out);
/*
 * One line per call on stderr. Text: "2026-11-26T06:42:31.123Z info msg". JSON: an object
 * with ts, level, msg, and one string member for each leading-space-separated `key=value`
 * token of the message (so `event=ain:0:0x3f:0 stage=build` becomes two fields).
 */
void ocra_log(enum ocra_log_level level, const char *fmt, ...) OCRA_PRINTF(2, 3);
#define ocra_log_error(...) ocra_log(OCRA_LOG_ERROR, __VA_ARGS__)
#define ocra_log_warn(...) ocra_log(OCRA_LOG_WARN, __VA_ARGS__)
#define ocra_log_info(...) ocra_log(OCRA_LOG_INFO, __VA_ARGS__)
#define ocra_log_debug(...) ocra_log(OCRA_LOG_DEBUG, __VA_ARGS__)

/* ---- allocation: out of memory aborts -------------------------------------------------- */

void *ocra_xmalloc(size_t n);
void *ocra_xcalloc(size_t nmemb, size_t size);
void *ocra_xrealloc(void *p, size_t n);
char *ocra_xstrdup(const char *s);
char *ocra_xstrndup(const char *s, size_t n);
/* Formats into a new string; caller frees with free(). */
char *ocra_xasprintf(const char *fmt, ...) OCRA_PRINTF(1, 2);
/* Overwrites n bytes at p with zeros the compiler cannot elide, then frees. For secrets. */
void ocra_secure_free(void *p, size_t n);

/* ---- growable buffer ------------------------------------------------------------------- */

/* Always NUL-terminated once anything was appended; data is NULL before that. */
struct ocra_buf {
    char *data;
    size_t len;
    size_t cap;
};

void ocra_buf_init(struct ocra_buf *b);
void ocra_buf_fini(struct ocra_buf *b);
void ocra_buf_reserve(struct ocra_buf *b, size_t extra);
void ocra_buf_append(struct ocra_buf *b, const void *data, size_t len);
void ocra_buf_puts(struct ocra_buf *b, const char *s);
void ocra_buf_putc(struct ocra_buf *b, char c);
void ocra_buf_printf(struct ocra_buf *b, const char *fmt, ...) OCRA_PRINTF(2, 3);
void ocra_buf_reset(struct ocra_buf *b);
/* Returns the NUL-terminated contents (never NULL); caller frees with free(). b is reset. */
char *ocra_buf_take(struct ocra_buf *b);

/* ---- hex ------------------------------------------------------------------------------- */

/* Writes 2n lowercase hex digits and a NUL to out (size >= 2n + 1). */
void ocra_hex_encode(const uint8_t *in, size_t n, char *out);
/*
 * Decodes exactly `cap` bytes from hex text (an optional 0x prefix is allowed). Fails with
 * EINVAL when the text is not 2*cap hex digits.
 */
int ocra_hex_decode(const char *s, uint8_t *out, size_t cap, struct ocra_err *err);
/* True when s is exactly n hex digits (no prefix). */
bool ocra_hex_is(const char *s, size_t n);

/* ---- hashing --------------------------------------------------------------------------- */

#define OCRA_SHA256_LEN 32
#define OCRA_KECCAK256_LEN 32

void ocra_sha256(const void *data, size_t len, uint8_t out[OCRA_SHA256_LEN]);
/* Lowercase hex of sha256(data) into out (65 bytes). */
void ocra_sha256_hex(const void *data, size_t len, char out[2 * OCRA_SHA256_LEN + 1]);
/* Streaming sha256 for data that does not fit in memory (a model artifact as it arrives).
 * ocra_sha256_begin() never fails (aborts on OOM); ocra_sha256_end() writes the digest and
 * frees the context; ocra_sha256_abort() frees it without a digest (NULL is a no-op). */
struct ocra_sha256_ctx;
struct ocra_sha256_ctx *ocra_sha256_begin(void);
void ocra_sha256_update(struct ocra_sha256_ctx *c, const void *data, size_t len);
void ocra_sha256_end(struct ocra_sha256_ctx *c, uint8_t out[OCRA_SHA256_LEN]);
void ocra_sha256_abort(struct ocra_sha256_ctx *c);
/* Keccak-256 as Ethereum and AIN use it (original Keccak padding 0x01, not SHA3's 0x06). */
void ocra_keccak256(const void *data, size_t len, uint8_t out[OCRA_KECCAK256_LEN]);

/* ---- numbers --------------------------------------------------------------------------- */

/* Parses a whole decimal integer in [min, max]; no spaces, no trailing text. EINVAL/ERANGE. */
int ocra_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out, struct ocra_err *err);
int ocra_parse_u64(const char *s, uint64_t max, uint64_t *out, struct ocra_err *err);

/* ---- strings --------------------------------------------------------------------------- */

/*
 * Writes a printable, quoted rendering of s[0..len) into out (size outsz): control bytes and
 * non-ASCII as \xNN, quotes and backslashes escaped, cut with "..." past max_chars input
 * bytes. For quoting hostile values in error messages. Returns out.
 */
char *ocra_str_escape(const char *s, size_t len, size_t max_chars, char *out, size_t outsz);
/* Cuts s in place to at most max bytes (max >= 3), ending with "..." where cut, never inside a
 * UTF-8 sequence. Returns s. */
char *ocra_str_cut(char *s, size_t max);
/* True when s[0..len) is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool ocra_utf8_valid(const char *s, size_t len);
/* Levenshtein distance, capped at 255 (for did-you-mean suggestions). */
unsigned ocra_str_distance(const char *a, const char *b);
/* The first of names[0..n) nearest to s, when at most max_d away (a likely typo); else NULL. */
const char *ocra_str_closest(const char *s, const char *const *names, size_t n, unsigned max_d);

/* ---- network addresses ----------------------------------------------------------------- */

/*
 * Where outgoing connections for hostile input (a spec's artifact URL) may go: a public
 * address, or one the operator allows. An address is IPv6; IPv4 is held as IPv4-mapped
 * (::ffff:a.b.c.d), so a mapped literal is judged as the IPv4 address it reaches.
 */
struct ocra_net_addr {
    uint8_t b[16];
};

/* What an address reaches; everything but PUBLIC is refused unless allowed. */
enum ocra_net_kind {
    OCRA_NET_PUBLIC,
    OCRA_NET_LOOPBACK,   /* 127/8, ::1, and "localhost" */
    OCRA_NET_PRIVATE,    /* RFC 1918, 100.64/10 (shared), fc00::/7, fec0::/10 */
    OCRA_NET_LINK_LOCAL, /* 169.254/16, fe80::/10 */
    OCRA_NET_METADATA,   /* cloud instance metadata: 169.254.169.254, fd00:ec2::254, ... */
    OCRA_NET_RESERVED,   /* unspecified (0.0.0.0 reaches this host), multicast, broadcast,
                            documentation, benchmarking, discard */
};

#define OCRA_NET_ADDR_STRLEN 46 /* INET6_ADDRSTRLEN */

/*
 * Parses the address literal s[0..n): IPv6 with or without brackets (a %zone is ignored), or
 * IPv4 in every form that URL parsers and resolvers accept (a.b.c.d, a.b.c, a.b, a; each part
 * decimal, 0x hex or 0-led octal; one trailing dot), so that "2130706433", "0x7f.1" and
 * "0177.0.0.1" all read as 127.0.0.1. 0, or -1 when s is not an address.
 */
int ocra_net_addr_parse(const char *s, size_t n, struct ocra_net_addr *out);
/*
 * The address that the host of a URL, s[0..n), names by itself: 1 and *out for an address
 * literal ("[v6]", or IPv4 in any form above) and for "localhost" and names under
 * ".localhost" (127.0.0.1, RFC 6761); 0 for a host name (what it resolves to is judged when
 * connecting); -1 for a host that ends in a number (its last label is all digits, or 0x and
 * hex digits) but is not an IPv4 address, which URL parsers refuse.
 */
int ocra_net_host_addr(const char *s, size_t n, struct ocra_net_addr *out);
/* The class of a; IPv4 inside NAT64 (64:ff9b::/96) and 6to4 (2002::/16) is judged as IPv4. */
enum ocra_net_kind ocra_net_addr_kind(const struct ocra_net_addr *a);
/* "public", "loopback", "private", "link-local", "metadata", "reserved". */
const char *ocra_net_kind_name(enum ocra_net_kind k);
/* The address as text: dotted IPv4 for a mapped address, else RFC 5952 IPv6. Returns out. */
char *ocra_net_addr_format(const struct ocra_net_addr *a, char out[OCRA_NET_ADDR_STRLEN]);
/* True for an operator's allow entry: a host name, an address, or a CIDR ("10.0.0.0/8",
 * "fd00::/8"; an IPv4 CIDR also matches its IPv4-mapped form). */
bool ocra_net_allow_entry_valid(const char *s);
/*
 * Whether a connection to addr, made for a URL whose host is host (a name or a literal,
 * brackets stripped; may be NULL), may go ahead: addr is public, or in an address or CIDR
 * entry of allow, or host equals a host-name entry (case-insensitive, a trailing dot
 * ignored). *kind (may be NULL) receives addr's class.
 */
bool ocra_net_allowed(const char *host, const struct ocra_net_addr *addr, const char *const *allow,
                      size_t n_allow, enum ocra_net_kind *kind);

/* ---- JSON (jansson) -------------------------------------------------------------------- */

#define OCRA_JSON_STRICT 0x1 /* reject duplicate keys */
/* Integer literals beyond int64 become reals, as JavaScript's JSON.parse reads every number:
 * for documents from JavaScript peers, which print any number below 1e21 in full. */
#define OCRA_JSON_JS_NUMBERS 0x2

/*
 * Parses one JSON document of len bytes. Errors (EINVAL) name the line and column. Caller
 * frees the result with json_decref().
 */
json_t *ocra_json_parse(const char *text, size_t len, unsigned flags, struct ocra_err *err);
json_t *ocra_json_load_file(const char *path, size_t max, unsigned flags, struct ocra_err *err);
/* Canonical text: keys sorted, no insignificant whitespace. Caller frees with free(). */
char *ocra_json_canonical(const json_t *j);
/* Compact text with keys in insertion order. Caller frees with free(). */
char *ocra_json_compact(const json_t *j);
/* Borrowed member lookups; NULL when absent or of another type. */
const char *ocra_json_str(const json_t *obj, const char *key);
/* Integer member, or def when absent or not an integer. */
int64_t ocra_json_int(const json_t *obj, const char *key, int64_t def);
/* The JSON type name of j ("object", "string", ...), for error messages. */
const char *ocra_json_type_name(const json_t *j);

/* ---- files ----------------------------------------------------------------------------- */

/*
 * Reads a whole file of at most max bytes (EFBIG past that). *out is NUL-terminated; caller
 * frees with free(). len may be NULL.
 */
int ocra_file_read(const char *path, size_t max, char **out, size_t *len, struct ocra_err *err);
/* Writes data to path through a temporary file of the calling thread's and rename(2), with
 * the given mode: threads and processes writing one path at once leave one of their data. */
int ocra_file_write_atomic(const char *path, const void *data, size_t len, unsigned mode,
                           struct ocra_err *err);
/* Writes all n bytes to fd, resuming after EINTR and short writes; -1 with errno set when
 * write(2) fails (or writes nothing, which sets EIO). */
int ocra_write_all(int fd, const void *data, size_t n);
/* close(2) that keeps errno and ignores fd < 0. */
void ocra_fd_close(int fd);

/* ---- time ------------------------------------------------------------------------------ */

/* Monotonic clock in nanoseconds, for intervals. */
uint64_t ocra_time_mono_ns(void);
/* Wall clock in milliseconds since the Unix epoch. */
int64_t ocra_time_wall_ms(void);
/* "2026-11-26T06:42:31.123Z" for ms since the epoch; out has at least 25 bytes. */
char *ocra_time_iso8601(int64_t ms, char *out, size_t outsz);

/* Sleeps ms milliseconds, resuming after signals. */
void ocra_sleep_ms(int64_t ms);

/* ---- processes ------------------------------------------------------------------------- */

/*
 * A process as another process of the same machine can recognise it, even after it is gone:
 * the scope in which its pid means one process (host name, boot id, pid namespace), the pid,
 * and its start time (a pid reused later has another start time).
 */
struct ocra_proc_id {
    char scope[192]; /* "HOST/BOOT_ID/PIDNS" */
    int64_t pid;
    int64_t start; /* clock ticks after boot (/proc/PID/stat, field 22) */
};

/*
 * Runs argv[0] (searched in PATH) with argv, in as its standard input and stdin closed after
 * it, and collects its standard output (at most max bytes; more is an error) into *out
 * (NUL-terminated, caller frees; it may hold a secret: ocra_secure_free it). Its standard
 * error goes to the null device. *status is its exit status (0-255), or 128 + the signal that
 * ended it. A program that runs past timeout_ms is killed (ETIMEDOUT). -1 only when it could not
 * be started or read (ENOENT: no such program), or ran too long or said too much.
 */
int ocra_proc_run(char *const argv[], const char *in, size_t max, int64_t timeout_ms, char **out,
                  size_t *out_len, int *status, struct ocra_err *err);

/* The calling process's identity. ENOENT and friends when /proc lacks what it needs. */
int ocra_proc_self(struct ocra_proc_id *out, struct ocra_err *err);
/* The start time of process pid in this pid namespace: 0 and *start set; -1 with ESRCH when
 * no such process runs (a zombie counts as gone); -1 with another errno when /proc cannot
 * tell (then the caller must assume that it runs). */
int ocra_proc_start(int64_t pid, int64_t *start, struct ocra_err *err);
/* Whether the process id names (in this scope) has gone: its pid is free or belongs to a
 * process started at another time. False when the scope differs or /proc cannot tell. */
bool ocra_proc_gone(const struct ocra_proc_id *self, const char *scope, int64_t pid, int64_t start);

/*
 * Pacing of requests to one peer: a client-side rate limit, and the delays between retries
 * (exponential backoff, capped, with 50-100 % jitter so that clients do not retry in step).
 */
struct ocra_pacer {
    int rate_limit;        /* requests per second; 0: unlimited */
    long backoff_ms;       /* first retry delay */
    long backoff_max_ms;   /* cap */
    uint64_t next_slot_ns; /* monotonic time before which no request may start */
    unsigned jitter;
};

/* rate_limit <= 0: none; backoff_ms <= 0: 250 ms; backoff_max_ms <= 0: 8 s. */
void ocra_pacer_init(struct ocra_pacer *p, int rate_limit, long backoff_ms, long backoff_max_ms);
/* Waits until the rate limit lets the next request start, and takes that slot. */
void ocra_pacer_wait(struct ocra_pacer *p);
/* The delay before retry `attempt` (1-based): backoff_ms * 2^(attempt-1), capped, jittered. */
long ocra_pacer_backoff_ms(struct ocra_pacer *p, int attempt);

#define OCRA_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
