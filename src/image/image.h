/* SPDX-License-Identifier: Apache-2.0 */
/*
 * image: container images without a container engine. An OCI distribution client (API check,
 * anonymous, basic and bearer-token auth, blob HEAD/GET/upload with resume, cross-repository
 * mount, manifest PUT/GET/HEAD), deterministic tar layers with digest and diff_id from one
 * pass, and canonical OCI image config and manifest documents, so the same inputs give the
 * same manifest digest on any machine. Everything a registry sends is verified against its
 * digest; credentials and tokens are never logged.
 */
#ifndef OCRA_IMAGE_H
#define OCRA_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/base.h"

#define OCRA_IMAGE_DIGEST_MAX 72      /* "sha256:" + 64 hex + NUL */
#define OCRA_IMAGE_MEDIA_TYPE_MAX 128 /* longer media types are rejected */

#define OCRA_IMAGE_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCRA_IMAGE_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define OCRA_IMAGE_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define OCRA_IMAGE_MT_OCI_LAYER "application/vnd.oci.image.layer.v1.tar"
#define OCRA_IMAGE_MT_OCI_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define OCRA_IMAGE_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define OCRA_IMAGE_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define OCRA_IMAGE_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define OCRA_IMAGE_MT_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"

/* ---- digests --------------------------------------------------------------------------- */

/* True when s is "sha256:" followed by exactly 64 lowercase hex digits. */
bool ocra_image_digest_valid(const char *s);
/* "sha256:<hex>" of data into out. */
void ocra_image_digest_of(const void *data, size_t len, char out[OCRA_IMAGE_DIGEST_MAX]);

/* ---- WWW-Authenticate ------------------------------------------------------------------ */

enum ocra_image_auth_scheme { OCRA_IMAGE_AUTH_NONE, OCRA_IMAGE_AUTH_BASIC, OCRA_IMAGE_AUTH_BEARER };

/* One challenge; strings are owned, freed by ocra_image_challenge_fini(). */
struct ocra_image_challenge {
    enum ocra_image_auth_scheme scheme;
    char *realm;   /* bearer: the token endpoint, an http(s) URL (checked) */
    char *service; /* may be NULL */
    char *scope;   /* may be NULL */
};

/*
 * Parses a WWW-Authenticate value (RFC 7235 auth-params: token or quoted-string values, any
 * order, unknown params ignored). The first Basic or Bearer challenge wins. Hostile input:
 * EPROTO on anything malformed (unterminated quote, control bytes, a value over 4 KiB, a
 * duplicate param, a bearer challenge without an http(s) realm); out is filled only on
 * success.
 */
int ocra_image_challenge_parse(const char *s, size_t len, struct ocra_image_challenge *out,
                               struct ocra_err *err);
void ocra_image_challenge_fini(struct ocra_image_challenge *c);

/* ---- descriptors and manifests --------------------------------------------------------- */

struct ocra_image_desc {
    char media_type[OCRA_IMAGE_MEDIA_TYPE_MAX];
    char digest[OCRA_IMAGE_DIGEST_MAX];
    int64_t size;
};

/* A parsed image manifest (OCI v1 or Docker schema 2); free with ocra_image_manifest_fini(). */
struct ocra_image_manifest {
    char media_type[OCRA_IMAGE_MEDIA_TYPE_MAX];
    struct ocra_image_desc config;
    struct ocra_image_desc *layers;
    size_t n_layers;
    json_t *annotations; /* object or NULL */
};

/*
 * Parses an image manifest. content_type (the registry's Content-Type; may be NULL) and the
 * document's own mediaType must agree where both are present. Indexes and manifest lists are
 * rejected with ENOTSUP; anything malformed with EPROTO (bad digest, negative size, more than
 * 4096 layers, schemaVersion other than 2).
 */
int ocra_image_manifest_parse(const char *data, size_t len, const char *content_type,
                              struct ocra_image_manifest *out, struct ocra_err *err);
void ocra_image_manifest_fini(struct ocra_image_manifest *m);

/*
 * The canonical OCI manifest (keys sorted, no whitespace) for a config and layers, with
 * optional annotations (an object of strings; borrowed). Caller frees with free(). EINVAL on
 * an invalid descriptor or annotation.
 */
char *ocra_image_manifest_build(const struct ocra_image_desc *config,
                                const struct ocra_image_desc *layers, size_t n_layers,
                                const json_t *annotations, struct ocra_err *err);

/* What goes into an image config. Arrays are NULL-terminated; NULL keeps the base's value. */
struct ocra_image_config_spec {
    const json_t *base;       /* the base image's config (borrowed) or NULL */
    const char *architecture; /* NULL: the base's, else "amd64" */
    const char *os;           /* NULL: the base's, else "linux" */
    int64_t created;          /* seconds since the epoch: the chain event's block time */
    const char *const *env;   /* "NAME=value"; replaces the base's entry of the same NAME */
    const char *const *entrypoint;
    const char *const *cmd;
    const char *working_dir;
    const char *user;
    const json_t *labels;          /* object of strings, merged over the base's (borrowed) */
    const char *const *diff_ids;   /* of the new layers, appended to the base's rootfs */
    const char *const *created_by; /* one history line per new layer (NULL: "ocra") */
};

/*
 * The canonical OCI image config JSON for spec. Caller frees with free(). EINVAL on a bad
 * diff_id, env entry or label, EPROTO on a malformed base config.
 */
char *ocra_image_config_build(const struct ocra_image_config_spec *spec, struct ocra_err *err);

/* ---- deterministic layers -------------------------------------------------------------- */

struct ocra_image_layer_entry {
    const char *path;   /* inside the image, relative ("opt/model/w.bin"); no "..", ".", "//" */
    const char *source; /* a regular file on this machine; NULL: a directory */
    unsigned mode;      /* permission bits (07777 max); the source's own mode is ignored */
};

struct ocra_image_layer {
    struct ocra_image_desc desc;         /* media type, digest (of the bytes written) and size */
    char diff_id[OCRA_IMAGE_DIGEST_MAX]; /* sha256 of the uncompressed tar */
};

/*
 * Writes a tar layer of the entries to out_fd: entries sorted by path, missing parent
 * directories added (0755), every mtime = mtime, uid/gid 0 without names, no xattrs, pax
 * headers only where ustar cannot hold a value. With gzip, the tar is compressed with a fixed
 * gzip header (mtime 0, no name, OS unknown) at level 6. digest and diff_id are computed in
 * the same pass. EINVAL on a bad or duplicate path, ENOENT/EACCES on a source, EIO on a
 * source that changed size while it was read.
 */
int ocra_image_layer_write(const struct ocra_image_layer_entry *entries, size_t n, int64_t mtime,
                           bool gzip, int out_fd, struct ocra_image_layer *out,
                           struct ocra_err *err);

/*
 * A plain tar layer of the entries, byte for byte what ocra_image_layer_write() writes
 * without gzip, read at any offset and never written anywhere: the tar's own bytes (headers,
 * padding, end blocks: a few KiB) are made now and kept in memory, the sources are opened now
 * and their bytes read when asked for. For an upload that computes the digest as the bytes go
 * (ocra_image_blob_push_stream()) and reads again after a failure. Same errors as
 * ocra_image_layer_write(). Caller frees with ocra_image_layer_stream_free().
 */
struct ocra_image_layer_stream;

struct ocra_image_layer_stream *
ocra_image_layer_stream_new(const struct ocra_image_layer_entry *entries, size_t n, int64_t mtime,
                            struct ocra_err *err);
void ocra_image_layer_stream_free(struct ocra_image_layer_stream *s);
/* The layer's size in bytes. */
uint64_t ocra_image_layer_stream_size(const struct ocra_image_layer_stream *s);
/*
 * Up to n bytes of the layer (an ocra_image_layer_stream) from off into buf: how many (0 at
 * or past the end), -1 with errno on a source's read error (EIO: a source shorter than when
 * the stream was made). Reads do not change the stream: threads may read it at once.
 */
ssize_t ocra_image_layer_stream_read(void *stream, void *buf, size_t n, uint64_t off);

/* ---- registry client ------------------------------------------------------------------- */

struct ocra_image_registry; /* one per thread */

struct ocra_image_registry_opts {
    const char *url;      /* "https://registry.example" or "http://127.0.0.1:5000" */
    const char *username; /* explicit credentials, else credentials_file, else docker config */
    const char *password;
    const char *credentials_file; /* "user:password" on one line, mode 0600 or stricter */
    const char *docker_config;    /* NULL: $DOCKER_CONFIG/config.json, ~/.docker/config.json */
    uint64_t chunk_size;          /* blob uploads: 0: monolithic, else PATCH chunks of it */
    int max_attempts;             /* per upload and per small request; 0: 5 */
    long backoff_ms;              /* first retry delay; 0: 250 ms */
    long timeout_ms;              /* small requests; 0: 30 s (blob transfers: 1 h) */
};

/*
 * A client for one registry. Reads credentials now (EINVAL on a malformed config or
 * credentials file, EACCES on a credentials file readable by others) but sends nothing.
 * Caller frees with ocra_image_registry_free(), which wipes credentials and tokens.
 */
struct ocra_image_registry *ocra_image_registry_new(const struct ocra_image_registry_opts *opts,
                                                    struct ocra_err *err);
void ocra_image_registry_free(struct ocra_image_registry *r);

/*
 * The Basic credentials the client was given or found (options, credentials file, Docker
 * config), for handing to a Docker engine that pushes to the same registry: 1 and
 * *username, *password (secrets: the caller wipes them with ocra_secure_free() and frees),
 * or 0 when there are none.
 */
int ocra_image_registry_credentials(const struct ocra_image_registry *r, char **username,
                                    char **password);

/* GET /v2/, authenticating if asked: 0 when the registry speaks the v2 API. */
int ocra_image_registry_ping(struct ocra_image_registry *r, struct ocra_err *err);

/* Where the bytes of a blob come from: memory (mem), a file read with pread (fd) or a reader
 * (read, as ocra_image_layer_stream_read() with its stream). */
struct ocra_image_src {
    const void *mem; /* NULL: read from fd, or with read */
    int fd;
    uint64_t size;
    /* Optional: reads up to n bytes at off (how many, 0 at the end, -1 on error); the same
     * bytes at the same offset every time. */
    ssize_t (*read)(void *arg, void *buf, size_t n, uint64_t off);
    void *read_arg;
    /* Optional: called as the bytes are read for an upload (done of size; a resumed upload
     * starts again at its offset). */
    void (*progress)(void *arg, uint64_t done, uint64_t size);
    void *progress_arg;
};

/* 1 when the blob exists in repo (*size set if size is not NULL), 0 when not, -1 on error. */
int ocra_image_blob_exists(struct ocra_image_registry *r, const char *repo, const char *digest,
                           int64_t *size, struct ocra_err *err);
/*
 * Uploads a blob unless it exists: monolithic (POST, then PUT ?digest=) or chunked (PATCH with
 * Content-Range) per opts.chunk_size. After a failed request it asks the registry for the
 * upload's offset (GET on the upload URL) and resumes from there, or restarts the upload when
 * the registry lost it; at most max_attempts failures. The registry's Docker-Content-Digest
 * must equal digest. 0 on success.
 */
int ocra_image_blob_push(struct ocra_image_registry *r, const char *repo, const char *digest,
                         const struct ocra_image_src *src, struct ocra_err *err);
/* The upload of ocra_image_blob_push() without asking first whether the registry has the blob
 * (one request fewer for a blob known to be new; uploading one it has is harmless). */
int ocra_image_blob_upload(struct ocra_image_registry *r, const char *repo, const char *digest,
                           const struct ocra_image_src *src, struct ocra_err *err);
/*
 * Uploads a blob whose digest is known only once its bytes are read (a layer streamed as it
 * is made, src->read): the bytes go in PATCH requests (one, or chunks of opts.chunk_size)
 * while their sha256 is computed, and the final PUT names the digest (the distribution API's
 * chunked upload). Resumes as ocra_image_blob_push() does, reading the bytes again from the
 * registry's offset (src gives the same bytes at the same offset). digest_out gets the
 * digest, which the registry's Docker-Content-Digest must equal. 0 on success.
 */
int ocra_image_blob_push_stream(struct ocra_image_registry *r, const char *repo,
                                const struct ocra_image_src *src,
                                char digest_out[OCRA_IMAGE_DIGEST_MAX], struct ocra_err *err);
/*
 * Mounts a blob of repository `from` into repo. 1 when mounted, 0 when the registry declined
 * (the upload it opened instead is cancelled), -1 on error.
 */
int ocra_image_blob_mount(struct ocra_image_registry *r, const char *repo, const char *digest,
                          const char *from, struct ocra_err *err);
/*
 * Fetches a blob of at most max bytes into memory, verified against digest (EPROTO on a
 * mismatch). *out is NUL-terminated; caller frees with free().
 */
int ocra_image_blob_get(struct ocra_image_registry *r, const char *repo, const char *digest,
                        size_t max, char **out, size_t *len, struct ocra_err *err);
/* Streams a blob into fd, verified against digest; on EPROTO the bytes in fd are not it. */
int ocra_image_blob_fetch(struct ocra_image_registry *r, const char *repo, const char *digest,
                          int fd, struct ocra_err *err);

/*
 * PUTs a manifest under ref (a tag or its digest). digest_out (may be NULL) gets the digest of
 * data, which the registry's Docker-Content-Digest must equal.
 */
int ocra_image_manifest_put(struct ocra_image_registry *r, const char *repo, const char *ref,
                            const char *media_type, const char *data, size_t len,
                            char digest_out[OCRA_IMAGE_DIGEST_MAX], struct ocra_err *err);
/*
 * GETs a manifest (OCI or Docker schema 2) by tag or digest. The bytes are verified: against
 * ref when it is a digest, else against the registry's Docker-Content-Digest when present.
 * *data (NUL-terminated) is the caller's to free(); media_type and digest_out may be NULL.
 */
int ocra_image_manifest_get(struct ocra_image_registry *r, const char *repo, const char *ref,
                            char **data, size_t *len, char media_type[OCRA_IMAGE_MEDIA_TYPE_MAX],
                            char digest_out[OCRA_IMAGE_DIGEST_MAX], struct ocra_err *err);
/* 1 when the manifest exists (digest_out, if not NULL, gets the registry's digest), 0, -1. */
int ocra_image_manifest_head(struct ocra_image_registry *r, const char *repo, const char *ref,
                             char digest_out[OCRA_IMAGE_DIGEST_MAX], struct ocra_err *err);

/*
 * GET /v2/<repo>/tags/list, following the registry's `Link: <...>; rel="next"` pages (on its
 * own origin only). *tags is a NULL-terminated array of *n tags in the registry's order; caller
 * frees each and the array with free(). A repository the registry does not know has no tags (0).
 * EPROTO on a malformed answer.
 */
int ocra_image_tags_list(struct ocra_image_registry *r, const char *repo, char ***tags, size_t *n,
                         struct ocra_err *err);

/* True for a repository name by the distribution grammar ("team/model-x"), <= 255 bytes. */
bool ocra_image_repo_valid(const char *repo);
/* True for a tag ([A-Za-z0-9_][A-Za-z0-9._-]{0,127}) or a valid digest. */
bool ocra_image_ref_valid(const char *ref);

/* ---- Docker Engine API (begin) */

/*
 * A client of one Docker engine over its unix socket or over TCP with TLS client certificates
 * (build, inspect, tag, remove, push);
 * one per thread. The engine's JSON progress stream is outside input: it is parsed line by
 * line as it arrives, bounded, and what reaches an error message is made printable.
 */
struct ocra_image_docker;

#define OCRA_IMAGE_DOCKER_LOG_MAX (64u << 10) /* default tail of the build output kept */

/*
 * Where an engine listens, from an endpoint URL: "unix:///absolute/path" (at most 107 bytes),
 * "tcp://host:port" (HTTPS with TLS client certificates: the engine runs with --tlsverify;
 * port 2376 when none), or "ssh://[user@]host[:port]". The tcp and ssh forms are read with
 * libcurl's URL API (curl_url); a unix URL is "unix://" and the path as it is (libcurl 7.88
 * reads the first path segment of "unix:///a/b" as a host).
 */
enum ocra_image_docker_scheme {
    OCRA_IMAGE_DOCKER_UNIX,
    OCRA_IMAGE_DOCKER_TCP,
    OCRA_IMAGE_DOCKER_SSH,
};
struct ocra_image_docker_endpoint {
    enum ocra_image_docker_scheme scheme;
    char socket[108]; /* unix: the socket path */
    char host[256];   /* tcp, ssh: the host (an IPv6 literal without brackets) */
    char user[64];    /* ssh: the user; "" none */
    long port;        /* tcp: the port (2376 when none); ssh: 22 when none */
};
/*
 * Parses url into out: EINVAL naming what is wrong ("tcp://h:port: no port..."), for any other
 * scheme, a relative or overlong socket path, a tcp or ssh URL with a path, query, fragment or
 * password, a user on tcp. Every message names the form expected.
 */
int ocra_image_docker_endpoint_parse(const char *url, struct ocra_image_docker_endpoint *out,
                                     struct ocra_err *err);

struct ocra_image_docker_opts {
    const char *socket; /* unix socket path; NULL: $DOCKER_HOST (unix://PATH only), else
                           /var/run/docker.sock */
    /* an endpoint URL (ocra_image_docker_endpoint_parse()), which wins over socket: a unix
     * socket, or tcp:// over HTTPS with tls_ca (verifies the engine), tls_cert and tls_key (the
     * client's, PEM), all three required; ssh:// is refused (ENOTSUP) */
    const char *host;
    const char *tls_ca, *tls_cert, *tls_key;
    long timeout_ms;       /* small requests; 0: 30 s */
    long build_timeout_ms; /* build and push; 0: 1 h */
};

/*
 * Connects and negotiates the API version (GET /version: the lower of the engine's and
 * ours, 1.41; at least 1.30). opts may be NULL. ECONNREFUSED/EIO when no engine answers,
 * ENOTSUP for a DOCKER_HOST other than unix:// or an engine too old, EINVAL for a relative
 * or overlong socket path. Caller frees with ocra_image_docker_free().
 */
struct ocra_image_docker *ocra_image_docker_new(const struct ocra_image_docker_opts *opts,
                                                struct ocra_err *err);
void ocra_image_docker_free(struct ocra_image_docker *d);
/* The negotiated API version ("1.41"); borrowed, valid until ocra_image_docker_free(). */
const char *ocra_image_docker_api_version(const struct ocra_image_docker *d);

/*
 * True for what the engine calls an image: "[host[:port]/]repo[:tag]", "name@sha256:...",
 * an image ID "sha256:<64 hex>" or 12 to 64 hex digits of one. Such a string is safe in a
 * URL path as it is.
 */
bool ocra_image_docker_ref_valid(const char *ref);

/* One build context file: its bytes from a file on this machine (path) or from memory. */
struct ocra_image_docker_file {
    const char *name; /* relative path in the context; no ".", "..", empty components */
    const char *path; /* a regular file, streamed; NULL: data/len */
    const void *data;
    size_t len;
    unsigned mode; /* permission bits; 0: 0644 */
};

/*
 * Writes a build context tar to fd: the Dockerfile text (may be NULL when files has a
 * "Dockerfile") as "Dockerfile" and the files, sorted by name, mtime 0, uid/gid 0, pax
 * restricted format: the same inputs give the same bytes. EINVAL on a bad or duplicate
 * name, ENOENT/EACCES/EIO on a source file.
 */
int ocra_image_docker_context_write(const char *dockerfile,
                                    const struct ocra_image_docker_file *files, size_t n, int fd,
                                    struct ocra_err *err);

struct ocra_image_docker_build_opts {
    const char *dockerfile;                     /* its text */
    const struct ocra_image_docker_file *files; /* more context; may be NULL */
    size_t n_files;
    const char *tag;         /* "repo:tag" (t=) or NULL */
    const json_t *buildargs; /* object of strings (buildargs=), borrowed, or NULL */
    const char *network;     /* "host" or "none" (networkmode=); NULL: "none". Never the
                                engine's default bridge. */
    bool pull;               /* pull=1: refresh the base image; default pull=0 */
    bool nocache;
    size_t log_max; /* the tail of the output kept; 0: OCRA_IMAGE_DOCKER_LOG_MAX */
};

struct ocra_image_docker_build {
    char id[OCRA_IMAGE_DIGEST_MAX]; /* the image ID (aux.ID), on success */
    char *log;                      /* the output's tail, NUL-terminated; success or not */
    size_t log_len;
    bool log_truncated; /* earlier output was dropped (the log starts at a line) */
};

/*
 * POST /build (rm=1, forcerm=1) with a context written by ocra_image_docker_context_write()
 * into an unlinked temporary file. out->log is filled whether the build succeeds or not (the
 * build record keeps it); release it with ocra_image_docker_build_fini() in both cases.
 * EIO when the engine reports an error in its stream: the engine's message, then the last
 * "Step N/M : ..." seen in parentheses; EPROTO on a malformed stream or one without an image
 * ID (a stream the engine cut off, as when it stops mid-build, is one of these or an HTTP
 * error); the HTTP status's errno when the engine refuses the request. The message does not
 * name opts->tag: the caller does.
 */
int ocra_image_docker_build(struct ocra_image_docker *d,
                            const struct ocra_image_docker_build_opts *opts,
                            struct ocra_image_docker_build *out, struct ocra_err *err);
void ocra_image_docker_build_fini(struct ocra_image_docker_build *b);

/* What image inspect tells; the JSON values are owned, never NULL (empty when absent). */
struct ocra_image_docker_image {
    char id[OCRA_IMAGE_DIGEST_MAX];
    json_t *repo_digests; /* array of "repo@sha256:..." strings */
    json_t *labels;       /* Config.Labels: object of strings */
    json_t *env;          /* Config.Env: array of "NAME=value" strings */
};

/* GET /images/{ref}/json. ENOENT when there is no such image. out may be NULL (an existence
 * check); else the caller frees it with ocra_image_docker_image_fini(). */
int ocra_image_docker_inspect(struct ocra_image_docker *d, const char *ref,
                              struct ocra_image_docker_image *out, struct ocra_err *err);
void ocra_image_docker_image_fini(struct ocra_image_docker_image *img);
/* POST /images/{ref}/tag: target is "[host[:port]/]repo:tag". */
int ocra_image_docker_tag(struct ocra_image_docker *d, const char *ref, const char *target,
                          struct ocra_err *err);
/* DELETE /images/{ref}. ENOENT when absent, EEXIST when in use (without force). */
int ocra_image_docker_remove(struct ocra_image_docker *d, const char *ref, bool force,
                             struct ocra_err *err);

/* Registry credentials for a push; NULL pushes anonymously (X-Registry-Auth of {}). */
struct ocra_image_docker_auth {
    const char *username;
    const char *password;      /* secret: wiped from ocra's copies */
    const char *serveraddress; /* may be NULL */
};

/*
 * POST /images/{name}/push?tag= with X-Registry-Auth (base64url of the JSON credentials).
 * name is "[host[:port]/]repo" without a tag. digest_out gets the pushed manifest's digest
 * (aux.Digest of the stream). EIO with the engine's message when the push fails, EPROTO on
 * a malformed stream or one without a digest.
 */
int ocra_image_docker_push(struct ocra_image_docker *d, const char *name, const char *tag,
                           const struct ocra_image_docker_auth *auth,
                           char digest_out[OCRA_IMAGE_DIGEST_MAX], struct ocra_err *err);
/*
 * POST /images/create?fromImage=REF: the engine pulls "[host[:port]/]repo@sha256:..." (by
 * digest only: EINVAL for a tag), with X-Registry-Auth as for a push (auth may be NULL). EIO
 * with the engine's message when the pull fails. Pulling an image the engine has is cheap:
 * the manifest only (also for an image it has by its config digest, as loaded, which the
 * pull then names by digest). *pulled (may be NULL) gets how many layers were downloaded.
 */
int ocra_image_docker_pull(struct ocra_image_docker *d, const char *ref,
                           const struct ocra_image_docker_auth *auth, int *pulled,
                           struct ocra_err *err);
/*
 * POST /images/load: the engine reads a docker-archive (ocra_image_docker_archive_new()) from
 * fd, a pipe or socket read to its end (sent chunked: its length need not be known). EIO with
 * the engine's message when it refuses the archive.
 */
int ocra_image_docker_load(struct ocra_image_docker *d, int fd, struct ocra_err *err);

/*
 * A docker-archive (what `docker save` writes and POST /images/load reads) written to fd as
 * its parts come: the new layers first, each a tar read from its source, then the config and
 * manifest.json, which names every layer of the config's rootfs: those the archive does not
 * hold (the base image's, before the new ones) the engine takes from its own store, so the
 * engine must have the base image. fd is a socket (written without SIGPIPE: its reader may be
 * gone) or a file. Caller frees with ocra_image_docker_archive_free(), which leaves an archive
 * not ended cut short.
 */
struct ocra_image_docker_archive;

struct ocra_image_docker_archive *ocra_image_docker_archive_new(int fd, struct ocra_err *err);
void ocra_image_docker_archive_free(struct ocra_image_docker_archive *x);
/* The next new layer: src->size bytes of its tar, read from src (mem, fd or read). */
int ocra_image_docker_archive_layer(struct ocra_image_docker_archive *x,
                                    const struct ocra_image_src *src, struct ocra_err *err);
/* The config (an image config whose rootfs ends with the layers added, in their order) and
 * manifest.json; ends the archive. EINVAL when the config has fewer layers. */
int ocra_image_docker_archive_end(struct ocra_image_docker_archive *x, const char *config,
                                  size_t len, struct ocra_err *err);

/*
 * The progress stream parser that build and push use, fed as bytes arrive: JSON objects,
 * one or more per line, lines of at most 1 MiB. "stream" texts and "status" lines (without
 * byte counts) go into a log of which the last log_max bytes are kept (0: the default);
 * "Step N/M : ..." output lines are remembered; the first errorDetail/error/message is the
 * failure; aux.ID and aux.Digest must be sha256 digests. Caller frees with
 * ocra_image_docker_progress_free().
 */
struct ocra_image_docker_progress;

struct ocra_image_docker_progress *ocra_image_docker_progress_new(size_t log_max);
void ocra_image_docker_progress_free(struct ocra_image_docker_progress *p);
/* Parses the complete lines in data (the rest waits for more). -1 (EPROTO) once the stream
 * is malformed; every later call fails the same way. */
int ocra_image_docker_progress_feed(struct ocra_image_docker_progress *p, const void *data,
                                    size_t n, struct ocra_err *err);
/* The end of the stream: parses a last unterminated line. -1 with EPROTO on a malformed
 * stream, EIO ("<message> (<step>)") when the engine reported an error, else 0. */
int ocra_image_docker_progress_end(struct ocra_image_docker_progress *p, struct ocra_err *err);
/* Borrowed, valid until the next call on p; NULL when none was seen. */
const char *ocra_image_docker_progress_id(const struct ocra_image_docker_progress *p);
const char *ocra_image_docker_progress_digest(const struct ocra_image_docker_progress *p);
const char *ocra_image_docker_progress_step(const struct ocra_image_docker_progress *p);
/* How many layers a pull's stream said it downloaded ("Pull complete"). */
int ocra_image_docker_progress_pulled(const struct ocra_image_docker_progress *p);
/* The kept log (NUL-terminated, *len bytes; starts at a line once truncated); borrowed. */
const char *ocra_image_docker_progress_log(const struct ocra_image_docker_progress *p, size_t *len,
                                           bool *truncated);

/* One engine reply: the HTTP status and the body (NUL-terminated); free with
 * ocra_image_docker_reply_fini(). */
struct ocra_image_docker_reply {
    long status;
    char *body;
    size_t len;
};

/*
 * One request to the engine under the negotiated version prefix, for the engine endpoints
 * this client has no function for (containers: src/run). path starts with '/' and is used as
 * it is: the caller checks what it pastes into it. json_body (may be NULL) goes with
 * Content-Type: application/json. timeout_ms 0: the client's; max_response 0: 4 MiB. 0 when
 * the engine answered, whatever the status (out filled); -1 on a transport failure.
 */
int ocra_image_docker_request(struct ocra_image_docker *d, const char *method, const char *path,
                              const char *json_body, long timeout_ms, size_t max_response,
                              struct ocra_image_docker_reply *out, struct ocra_err *err);
void ocra_image_docker_reply_fini(struct ocra_image_docker_reply *r);
/* Fills err from a non-2xx reply: the status's errno (ocra_http_status_errno) and the
 * engine's message, made printable. Returns -1. */
int ocra_image_docker_reply_err(const struct ocra_image_docker_reply *r, struct ocra_err *err);

/* ---- Docker Engine API (end) */

/* ---- signing (begin) */

/*
 * Cosign-compatible signatures of manifest digests (ECDSA P-256 over sha256, DER, base64).
 * The signed payload is a "simple signing" document naming "<registry host>/<repo>" and the
 * digest; it is pushed as the one layer of an OCI manifest tagged "sha256-<hex>.sig" in the
 * same repository, its signature in the layer annotation below, as `cosign sign --key` does.
 */
#define OCRA_IMAGE_MT_COSIGN_PAYLOAD "application/vnd.dev.cosign.simplesigning.v1+json"
#define OCRA_IMAGE_ANN_COSIGN_SIGNATURE "dev.cosignproject.cosign/signature"
#define OCRA_IMAGE_COSIGN_TYPE "cosign container image signature"
#define OCRA_IMAGE_SIG_TAG_MAX 80 /* "sha256-" + 64 hex + ".sig" + NUL */

struct ocra_image_key; /* an ECDSA P-256 key, private or public */

/*
 * Loads a PEM private key (PKCS#8 "PRIVATE KEY" or "EC PRIVATE KEY", unencrypted). EACCES when
 * the file is readable or writable by group or others, EINVAL when it is not a P-256 key or
 * is encrypted. Caller frees with ocra_image_key_free(), which wipes it.
 */
struct ocra_image_key *ocra_image_key_load_private(const char *path, struct ocra_err *err);
/* Loads a PEM public key ("PUBLIC KEY", as cosign.pub). EINVAL when not P-256. */
struct ocra_image_key *ocra_image_key_load_public(const char *path, struct ocra_err *err);
void ocra_image_key_free(struct ocra_image_key *k);
/* Writes a new P-256 key pair: priv_path (PKCS#8 PEM, mode 0600) and pub_path (mode 0644). */
int ocra_image_key_generate(const char *priv_path, const char *pub_path, struct ocra_err *err);

/* Base64 of the DER ECDSA signature of sha256(data); caller frees with free(). */
char *ocra_image_key_sign(const struct ocra_image_key *k, const void *data, size_t len,
                          struct ocra_err *err);
/* 0 when sig_b64 is a valid signature of data by k; EACCES (with why) when not. */
int ocra_image_key_verify(const struct ocra_image_key *k, const void *data, size_t len,
                          const char *sig_b64, struct ocra_err *err);

/* "sha256-<hex>.sig" for a valid digest into out. */
void ocra_image_sig_tag(const char *digest, char out[OCRA_IMAGE_SIG_TAG_MAX]);
/*
 * The simple-signing payload for docker_ref ("host[:port]/repo") and digest, canonical JSON;
 * optional (an object, borrowed) or NULL gives "optional":null as cosign writes it. Caller
 * frees with free(). EINVAL on a bad digest or reference.
 */
char *ocra_image_sig_payload(const char *docker_ref, const char *digest, const json_t *optional,
                             struct ocra_err *err);
/*
 * Checks a payload: EPROTO when malformed, EACCES when its type is not cosign's or it names
 * another digest or reference.
 */
int ocra_image_sig_payload_check(const char *data, size_t len, const char *docker_ref,
                                 const char *digest, struct ocra_err *err);

/*
 * Signs the manifest `digest` of repo (which must exist there, else ENOENT): pushes the
 * payload (with optional, borrowed, may be NULL) and a config, and PUTs the signature
 * manifest under "sha256-<hex>.sig", replacing an earlier one. sig_digest_out (may be NULL)
 * gets that manifest's digest.
 */
int ocra_image_sign(struct ocra_image_registry *r, const char *repo, const char *digest,
                    const struct ocra_image_key *key, const json_t *optional,
                    char sig_digest_out[OCRA_IMAGE_DIGEST_MAX], struct ocra_err *err);
/*
 * Verifies repo's image ref (a tag or a digest): fetches the manifest (its bytes must have
 * the digest asked for), the config and every layer (each digest and size checked; layers
 * are streamed through an unlinked file in $TMPDIR), the signature manifest of that digest,
 * and checks that a payload in it is signed by pub and names this digest and
 * "<host>/<repo>"; then that the manifest has every annotation of expected (an object of
 * strings, borrowed, may be NULL) with the same value. digest_out (may be NULL) gets the
 * manifest digest. A verification failure is EPROTO (content that does not match its digest
 * or size) or EACCES (no signature, a bad one, a payload for something else, an annotation
 * that differs); other codes mean the registry could not be read.
 */
int ocra_image_verify(struct ocra_image_registry *r, const char *repo, const char *ref,
                      const struct ocra_image_key *pub, const json_t *expected,
                      char digest_out[OCRA_IMAGE_DIGEST_MAX], struct ocra_err *err);

/* ---- signing (end) */

#endif
