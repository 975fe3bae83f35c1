/* SPDX-License-Identifier: Apache-2.0 */
/*
 * image_layer.c: deterministic tar layers. Entries are sorted, parents added, and every value
 * that could differ between machines or runs is fixed (mtime, owner, names, modes, no xattrs,
 * no atime/ctime), so equal inputs give equal bytes. libarchive writes the tar (pax restricted:
 * plain ustar unless a value needs a pax header); its output streams through sha256 (the
 * diff_id), then optionally a raw deflate framed by a fixed gzip header, then sha256 again (the
 * digest) on its way to the file: one pass over the source bytes. A plain tar layer can also
 * be streamed instead of written: the same writer makes its headers, unblocked, into memory,
 * the zeros it writes in place of a file's bytes mark where that file's bytes go, and a read
 * at any offset takes them from the headers or from the file.
 */
#include "image/image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>
#include <zlib.h>

#define PATH_MAX_LEN 4096
#define READ_BUF (1u << 20)
#define TAR_BLOCK 10240 /* libarchive pads the tar to a multiple of this */

struct item {
    char *path;
    const char *source; /* NULL: directory */
    unsigned mode;
    bool implied; /* a parent nobody listed */
};

struct layer_out {
    int fd;
    bool gzip;
    z_stream z;
    uLong crc;
    uint64_t tar_size;
    uint64_t size;
    EVP_MD_CTX *tar_md;
    EVP_MD_CTX *out_md;
    unsigned char zbuf[1u << 16];
};

/* ---- entries --------------------------------------------------------------------------- */

static int
path_check(const char *p, struct ocra_err *err)
{
    size_t len = strlen(p);

    if (len == 0 || len > PATH_MAX_LEN || p[0] == '/' || p[len - 1] == '/' ||
        !ocra_utf8_valid(p, len))
        return ocra_err_set(err, EINVAL, "layer path is empty, absolute, too long or not UTF-8");
    for (const char *s = p; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return ocra_err_set(err, EINVAL, "layer path has a control byte");
    for (const char *c = p;;) {
        size_t n = strcspn(c, "/");

        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return ocra_err_set(err, EINVAL, "layer path has an empty, . or .. component");
        if (!c[n])
            return 0;
        c += n + 1;
    }
}

static int
item_cmp(const void *a, const void *b)
{
    return strcmp(((const struct item *)a)->path, ((const struct item *)b)->path);
}

static void
items_free(struct item *it, size_t n)
{
    for (size_t i = 0; it && i < n; i++)
        free(it[i].path);
    free(it);
}

/* Sorts and merges: a path may repeat only as directories, one of them implied. */
static int
items_merge(struct item *it, size_t k, size_t *count, struct ocra_err *err)
{
    size_t w = 0;

    qsort(it, k, sizeof(*it), item_cmp);
    for (size_t i = 1; i < k; i++)
        if (strcmp(it[i - 1].path, it[i].path) == 0 &&
            (it[i - 1].source || it[i].source || (!it[i - 1].implied && !it[i].implied)))
            return ocra_err_set(err, EINVAL, "layer path %.64s given twice", it[i].path);
    for (size_t i = 0; i < k; i++) {
        if (w && strcmp(it[w - 1].path, it[i].path) == 0) {
            if (it[w - 1].implied)
                it[w - 1].mode = it[i].mode, it[w - 1].implied = it[i].implied;
            free(it[i].path);
            continue;
        }
        it[w++] = it[i];
    }
    *count = w;
    return 0;
}

/* The entries plus their missing parents, sorted; duplicates rejected. */
static struct item *
items_make(const struct ocra_image_layer_entry *e, size_t n, size_t *count, struct ocra_err *err)
{
    size_t cap = 16, k = 0;
    struct item *it = ocra_xmalloc(cap * sizeof(*it));

    for (size_t i = 0; i < n; i++) {
        if (path_check(e[i].path, err) < 0 || e[i].mode > 07777) {
            ocra_err_set(err, EINVAL, "layer entry %zu: bad path or mode", i);
            items_free(it, k);
            return NULL;
        }
        for (const char *s = e[i].path;; s++) {
            if (k == cap)
                it = ocra_xrealloc(it, (cap *= 2) * sizeof(*it));
            if (*s == '/') {
                it[k++] = (struct item){ocra_xstrndup(e[i].path, (size_t)(s - e[i].path)), NULL,
                                        0755, true};
            } else if (!*s) {
                it[k++] = (struct item){ocra_xstrdup(e[i].path), e[i].source, e[i].mode, false};
                break;
            }
        }
    }
    if (items_merge(it, k, count, err) < 0) {
        items_free(it, k);
        return NULL;
    }
    return it;
}

/* ---- output chain ---------------------------------------------------------------------- */

static int
out_write(struct layer_out *lo, const void *data, size_t n)
{
    EVP_DigestUpdate(lo->out_md, data, n);
    lo->size += n;
    return ocra_write_all(lo->fd, data, n);
}

static int
deflate_run(struct layer_out *lo, const void *data, size_t n, int flush)
{
    lo->z.next_in = (Bytef *)(uintptr_t)data;
    lo->z.avail_in = (uInt)n;
    do {
        int rc;

        lo->z.next_out = lo->zbuf;
        lo->z.avail_out = sizeof(lo->zbuf);
        rc = deflate(&lo->z, flush);
        if (rc == Z_STREAM_ERROR)
            return -1;
        if (out_write(lo, lo->zbuf, sizeof(lo->zbuf) - lo->z.avail_out) < 0)
            return -1;
        if (flush == Z_FINISH && rc == Z_STREAM_END)
            return 0;
    } while (lo->z.avail_out == 0 || flush == Z_FINISH);
    return 0;
}

static la_ssize_t
tar_write(struct archive *a, void *ctx, const void *buf, size_t n)
{
    struct layer_out *lo = ctx;
    int rc;

    EVP_DigestUpdate(lo->tar_md, buf, n);
    lo->tar_size += n;
    if (!lo->gzip) {
        /* the output is the tar: one hash gives both digest and diff_id */
        lo->size += n;
        rc = ocra_write_all(lo->fd, buf, n);
    } else {
        lo->crc = crc32(lo->crc, buf, (uInt)n);
        rc = deflate_run(lo, buf, n, Z_NO_FLUSH);
    }
    if (rc < 0) {
        archive_set_error(a, errno ? errno : EIO, "layer output failed");
        return -1;
    }
    return (la_ssize_t)n;
}

static int
gzip_begin(struct layer_out *lo)
{
    /* fixed header: no mtime, no name, no flags, OS 255 (unknown) */
    static const unsigned char hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};

    if (deflateInit2(&lo->z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    lo->crc = crc32(0L, Z_NULL, 0);
    return out_write(lo, hdr, sizeof(hdr));
}

static int
gzip_end(struct layer_out *lo)
{
    unsigned char tail[8];
    uint32_t crc = (uint32_t)lo->crc, isize = (uint32_t)lo->tar_size;

    if (deflate_run(lo, NULL, 0, Z_FINISH) < 0)
        return -1;
    for (int i = 0; i < 4; i++) {
        tail[i] = (unsigned char)(crc >> (8 * i));
        tail[4 + i] = (unsigned char)(isize >> (8 * i));
    }
    return out_write(lo, tail, sizeof(tail));
}

/* ---- tar ------------------------------------------------------------------------------- */

static int
copy_source(struct archive *a, int fd, int64_t size, char *buf, struct ocra_err *err)
{
    int64_t total = 0;

    for (;;) {
        ssize_t n = read(fd, buf, READ_BUF);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return ocra_err_sys(err, "read");
        if (n == 0)
            break;
        total += n;
        if (total > size)
            break;
        if (archive_write_data(a, buf, (size_t)n) != n)
            return ocra_err_set(err, EIO, "tar: %s", archive_error_string(a));
    }
    if (total != size)
        return ocra_err_set(err, EIO, "changed size while it was read");
    return 0;
}

/* Opens an item's source: a regular file, its size into *size. */
static int
source_open(const struct item *it, int *fd_out, int64_t *size, struct ocra_err *err)
{
    struct stat st;
    int fd = open(it->source, O_RDONLY | O_CLOEXEC);

    if (fd < 0 || fstat(fd, &st) < 0) {
        ocra_err_sys(err, "open");
        ocra_fd_close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        ocra_fd_close(fd);
        return ocra_err_set(err, EINVAL, "not a regular file");
    }
    *fd_out = fd;
    *size = st.st_size;
    return 0;
}

/* Writes the tar header of an item (a directory, or a file of size bytes). */
static int
header_write(struct archive *a, struct archive_entry *ae, const struct item *it, int64_t mtime,
             int64_t size, struct ocra_err *err)
{
    archive_entry_clear(ae);
    archive_entry_set_pathname(ae, it->path);
    archive_entry_set_mtime(ae, (time_t)mtime, 0);
    archive_entry_set_uid(ae, 0);
    archive_entry_set_gid(ae, 0);
    archive_entry_set_mode(ae, (it->source ? AE_IFREG : AE_IFDIR) | (it->mode & 07777));
    if (it->source)
        archive_entry_set_size(ae, size);
    if (archive_write_header(a, ae) != ARCHIVE_OK)
        return ocra_err_set(err, EIO, "tar: %s", archive_error_string(a));
    return 0;
}

static int
add_item(struct archive *a, struct archive_entry *ae, const struct item *it, int64_t mtime,
         char *buf, struct ocra_err *err)
{
    int64_t size = 0;
    int fd = -1, ret = -1;

    if (it->source && source_open(it, &fd, &size, err) < 0)
        goto out;
    if (header_write(a, ae, it, mtime, size, err) < 0)
        goto out;
    ret = it->source ? copy_source(a, fd, size, buf, err) : 0;
out:
    if (ret < 0)
        ocra_err_wrap(err, "layer entry %s", it->path);
    ocra_fd_close(fd);
    return ret;
}

/* A tar writer of ocra's format (pax restricted) calling out for its output. */
static struct archive *
tar_open(void *ctx, la_ssize_t (*out)(struct archive *, void *, const void *, size_t),
         int bytes_per_block, struct ocra_err *err)
{
    struct archive *a = archive_write_new();

    if (!a)
        abort();
    archive_write_set_format_pax_restricted(a);
    archive_write_set_bytes_per_block(a, bytes_per_block);
    if (archive_write_open(a, ctx, NULL, out, NULL) != ARCHIVE_OK) {
        ocra_err_set(err, EIO, "tar: %s", archive_error_string(a));
        archive_write_free(a);
        return NULL;
    }
    return a;
}

static int
write_tar(struct layer_out *lo, const struct item *it, size_t n, int64_t mtime,
          struct ocra_err *err)
{
    struct archive *a = tar_open(lo, tar_write, TAR_BLOCK, err);
    struct archive_entry *ae = archive_entry_new();
    char *buf = ocra_xmalloc(READ_BUF);
    int ret = -1;

    if (!ae)
        abort();
    if (!a)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (add_item(a, ae, &it[i], mtime, buf, err) < 0)
            goto out;
    if (archive_write_close(a) != ARCHIVE_OK) {
        ocra_err_set(err, EIO, "tar: %s", archive_error_string(a));
        goto out;
    }
    ret = 0;
out:
    archive_entry_free(ae);
    archive_write_free(a);
    free(buf);
    return ret;
}

static void
md_digest(EVP_MD_CTX *md, char out[OCRA_IMAGE_DIGEST_MAX])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned n = 0;

    EVP_DigestFinal_ex(md, d, &n);
    memcpy(out, "sha256:", 7);
    ocra_hex_encode(d, n, out + 7);
}

int
ocra_image_layer_write(const struct ocra_image_layer_entry *entries, size_t n, int64_t mtime,
                       bool gzip, int out_fd, struct ocra_image_layer *out, struct ocra_err *err)
{
    struct layer_out *lo = ocra_xcalloc(1, sizeof(*lo));
    struct item *it = NULL;
    const char *mt;
    size_t count = 0;
    int ret = -1;

    lo->fd = out_fd;
    lo->gzip = gzip;
    lo->tar_md = EVP_MD_CTX_new();
    lo->out_md = EVP_MD_CTX_new();
    if (!lo->tar_md || !lo->out_md)
        abort();
    EVP_DigestInit_ex(lo->tar_md, EVP_sha256(), NULL);
    EVP_DigestInit_ex(lo->out_md, EVP_sha256(), NULL);
    if (mtime < 0) {
        ocra_err_set(err, EINVAL, "layer mtime is negative");
        goto out;
    }
    it = items_make(entries, n, &count, err);
    if (!it)
        goto out;
    if (gzip && gzip_begin(lo) < 0) {
        ocra_err_sys(err, "layer: gzip");
        goto out;
    }
    if (write_tar(lo, it, count, mtime, err) < 0 || (gzip && gzip_end(lo) < 0)) {
        if (err && !err->code)
            ocra_err_sys(err, "layer: write");
        goto out;
    }
    memset(out, 0, sizeof(*out));
    mt = gzip ? OCRA_IMAGE_MT_OCI_LAYER_GZIP : OCRA_IMAGE_MT_OCI_LAYER;
    memcpy(out->desc.media_type, mt, strlen(mt) + 1); /* both fit: compile-time constants */
    md_digest(lo->tar_md, out->diff_id);
    if (lo->gzip)
        md_digest(lo->out_md, out->desc.digest);
    else
        memcpy(out->desc.digest, out->diff_id, sizeof(out->diff_id));
    out->desc.size = (int64_t)lo->size;
    ret = 0;
out:
    items_free(it, count);
    if (gzip)
        deflateEnd(&lo->z);
    EVP_MD_CTX_free(lo->tar_md);
    EVP_MD_CTX_free(lo->out_md);
    free(lo);
    return ret;
}

/* ---- streamed layers ------------------------------------------------------------------- */

/* A run of the layer's bytes: from the headers kept in memory, or from a source file. */
struct segment {
    uint64_t start, len; /* in the layer */
    int fd;              /* -1: the bytes are mem[off, off + len) */
    size_t off;
};

struct ocra_image_layer_stream {
    struct ocra_buf mem; /* the tar's own bytes: headers, padding, end blocks */
    struct segment *seg;
    size_t n_seg, cap_seg;
    uint64_t size;
    uint64_t skip; /* while made: the zeros libarchive writes in place of a file's bytes */
};

static void
segment_add(struct ocra_image_layer_stream *s, int fd, uint64_t len)
{
    struct segment *last = s->n_seg ? &s->seg[s->n_seg - 1] : NULL;

    if (len == 0)
        return;
    if (fd < 0 && last && last->fd < 0) { /* memory follows memory: one run */
        last->len += len;
    } else {
        if (s->n_seg == s->cap_seg)
            s->seg = ocra_xrealloc(s->seg, (s->cap_seg = s->cap_seg ? 2 * s->cap_seg : 8) *
                                               sizeof(*s->seg));
        s->seg[s->n_seg++] = (struct segment){s->size, len, fd, fd < 0 ? s->mem.len : 0};
    }
    s->size += len;
}

/* The tar writer's output while the stream is made: kept, except the file bytes it stands in
 * for with zeros (libarchive writes them at the end of an entry whose data was not given). */
static la_ssize_t
stream_capture(struct archive *a, void *ctx, const void *buf, size_t n)
{
    struct ocra_image_layer_stream *s = ctx;
    size_t skip = s->skip < n ? (size_t)s->skip : n;

    (void)a;
    s->skip -= skip;
    segment_add(s, -1, n - skip);
    ocra_buf_append(&s->mem, (const char *)buf + skip, n - skip);
    return (la_ssize_t)n;
}

/* Writes the headers of the items into s (unblocked: every byte reaches stream_capture at
 * once), each file as a segment of its source, then the end of the tar; last, the padding
 * to the block size that a blocked writer adds. */
static int
stream_make(struct ocra_image_layer_stream *s, const struct item *it, size_t n, int64_t mtime,
            struct ocra_err *err)
{
    struct archive *a = tar_open(s, stream_capture, 0, err);
    struct archive_entry *ae = archive_entry_new();
    int ret = -1;

    if (!ae)
        abort();
    if (!a)
        goto out;
    for (size_t i = 0; i < n; i++) {
        int64_t size = 0;
        int fd = -1;

        if ((it[i].source && source_open(&it[i], &fd, &size, err) < 0) ||
            header_write(a, ae, &it[i], mtime, size, err) < 0) {
            ocra_fd_close(fd);
            ocra_err_wrap(err, "layer entry %s", it[i].path);
            goto out;
        }
        if (fd >= 0) {
            /* the segment owns fd from here; a file that is empty needs none */
            if (size == 0)
                ocra_fd_close(fd);
            else
                segment_add(s, fd, (uint64_t)size);
            s->skip = (uint64_t)size;
        }
    }
    if (archive_write_close(a) != ARCHIVE_OK) {
        ocra_err_set(err, EIO, "tar: %s", archive_error_string(a));
        goto out;
    }
    if (s->skip) { /* libarchive did not write the place of a file's bytes: not its tar */
        ocra_err_set(err, EIO, "tar: the writer left a file's bytes out");
        goto out;
    }
    if (s->size % TAR_BLOCK) {
        size_t pad = (size_t)(TAR_BLOCK - s->size % TAR_BLOCK);

        segment_add(s, -1, pad);
        ocra_buf_reserve(&s->mem, pad);
        memset(s->mem.data + s->mem.len, 0, pad);
        s->mem.len += pad;
    }
    ret = 0;
out:
    archive_entry_free(ae);
    archive_write_free(a);
    return ret;
}

struct ocra_image_layer_stream *
ocra_image_layer_stream_new(const struct ocra_image_layer_entry *entries, size_t n, int64_t mtime,
                            struct ocra_err *err)
{
    struct ocra_image_layer_stream *s = ocra_xcalloc(1, sizeof(*s));
    struct item *it = NULL;
    size_t count = 0;

    ocra_buf_init(&s->mem);
    if (mtime < 0) {
        ocra_err_set(err, EINVAL, "layer mtime is negative");
        goto fail;
    }
    if (!(it = items_make(entries, n, &count, err)) || stream_make(s, it, count, mtime, err) < 0)
        goto fail;
    items_free(it, count);
    return s;
fail:
    items_free(it, count);
    ocra_image_layer_stream_free(s);
    return NULL;
}

void
ocra_image_layer_stream_free(struct ocra_image_layer_stream *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_seg; i++)
        ocra_fd_close(s->seg[i].fd);
    free(s->seg);
    ocra_buf_fini(&s->mem);
    free(s);
}

uint64_t
ocra_image_layer_stream_size(const struct ocra_image_layer_stream *s)
{
    return s->size;
}

/* The segment that holds off (off < s->size): the last one that starts at or before it. */
static size_t
segment_find(const struct ocra_image_layer_stream *s, uint64_t off)
{
    size_t lo = 0, hi = s->n_seg;

    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;

        if (s->seg[mid].start <= off)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

ssize_t
ocra_image_layer_stream_read(void *arg, void *buf, size_t n, uint64_t off)
{
    struct ocra_image_layer_stream *s = arg;
    size_t i = segment_find(s, off), done = 0;

    while (done < n && off < s->size) {
        const struct segment *g = &s->seg[i];
        uint64_t in = off - g->start;
        size_t k = n - done < g->len - in ? n - done : (size_t)(g->len - in);

        if (g->fd < 0) {
            memcpy((char *)buf + done, s->mem.data + g->off + in, k);
        } else {
            ssize_t got = pread(g->fd, (char *)buf + done, k, (off_t)in);

            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0) { /* the source shrank since the stream was made */
                if (got == 0)
                    errno = EIO;
                return done ? (ssize_t)done : -1;
            }
            k = (size_t)got;
        }
        done += k;
        off += k;
        if (off == g->start + g->len)
            i++;
    }
    return (ssize_t)done;
}
