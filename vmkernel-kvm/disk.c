/* A VM's disk: raw base plus redirect-on-write delta layers (see disk.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "vmkernel-kvm/disk.h"

KVC_LOG_MODULE(disk);

#define CHAIN_MAX_BYTES (64u * 1024)
#define MAX_IOV 160u
#define MERGE_BUF (256u * 1024)

#define ERR(...) do { if (err) snprintf(err, errlen, __VA_ARGS__); } while (0)

static int finish_merge(struct disk *, struct disk_merge_info *, char *err, size_t errlen);

/* ---- small helpers ---- */

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t fnv64(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t random_id(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof(v), 0) != sizeof(v))
        v = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
    return v ? v : 1;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= DISK_NAME_MAX || !strcmp(s, ".") || !strcmp(s, ".."))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static bool is_base(const char *s)
{
    return !strcmp(s, DISK_BASE);
}

static int full_io(int fd, bool wr, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t n = wr ? pwrite(fd, p, len, (off_t)off) : pread(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0) {
            if (wr)
                return -EIO;
            memset(p, 0, len);      /* past the end of a file: zeros */
            return 0;
        }
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* DST = the LEN bytes of SRC starting SKIP bytes in; returns the count. */
unsigned disk_iov_sub(const struct iovec *src, unsigned n, uint64_t skip, uint64_t len,
                        struct iovec *dst, unsigned cap)
{
    unsigned k = 0;
    for (unsigned i = 0; i < n && len && k < cap; i++) {
        uint64_t l = src[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        uint64_t take = l - skip < len ? l - skip : len;
        dst[k].iov_base = (uint8_t *)src[i].iov_base + skip;
        dst[k++].iov_len = take;
        len -= take;
        skip = 0;
    }
    return len ? 0 : k;
}

static int full_iov(int fd, bool wr, const struct iovec *iov, unsigned n, uint64_t off)
{
    struct iovec v[MAX_IOV];
    if (n > MAX_IOV)
        return -EINVAL;
    memcpy(v, iov, n * sizeof(*v));
    unsigned i = 0;
    while (i < n) {
        if (!v[i].iov_len) {
            i++;
            continue;
        }
        ssize_t r = wr ? pwritev(fd, v + i, (int)(n - i), (off_t)off)
                       : preadv(fd, v + i, (int)(n - i), (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0) {
            if (wr)
                return -EIO;
            for (; i < n; i++)          /* past EOF of a sparse file: zeros */
                memset(v[i].iov_base, 0, v[i].iov_len);
            return 0;
        }
        off += (uint64_t)r;
        while (r > 0 && i < n) {
            if ((size_t)r >= v[i].iov_len) {
                r -= (ssize_t)v[i].iov_len;
                v[i++].iov_len = 0;
            } else {
                v[i].iov_base = (uint8_t *)v[i].iov_base + r;
                v[i].iov_len -= (size_t)r;
                r = 0;
            }
        }
    }
    return 0;
}

static void iov_copy_out(const struct iovec *iov, unsigned n, uint64_t skip, uint8_t *dst, uint64_t len)
{
    for (unsigned i = 0; i < n && len; i++) {
        uint64_t l = iov[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        uint64_t take = l - skip < len ? l - skip : len;
        memcpy(dst, (uint8_t *)iov[i].iov_base + skip, take);
        dst += take;
        len -= take;
        skip = 0;
    }
}

static int path_in(const struct disk *d, char *out, size_t cap, const char *name, const char *ext)
{
    if ((size_t)snprintf(out, cap, "%s/%s%s", d->dir, name, ext) >= cap)
        return -ENAMETOOLONG;
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static uint64_t bitmap_bytes(uint64_t clusters)
{
    return (clusters + 7) / 8;
}

static uint64_t map_file_size(uint64_t clusters)
{
    return DISK_MAP_HDR + ((bitmap_bytes(clusters) + DISK_MAP_HDR - 1) / DISK_MAP_HDR) * DISK_MAP_HDR;
}

static bool bit(const struct disk_layer *l, uint64_t c)
{
    return !l->bitmap || (l->bitmap[c / 8] >> (c % 8) & 1);
}

static void set_bit(struct disk_layer *l, uint64_t c)
{
    if (!l->bitmap || bit(l, c))
        return;
    l->bitmap[c / 8] |= (uint8_t)(1u << (c % 8));
    uint64_t page = c / 8 / DISK_MAP_HDR;
    l->dirty[page / 8] |= (uint8_t)(1u << (page % 8));
    l->allocated++;
}

/* ---- chain file ---- */

static int parse_hex64(const char *s, uint64_t *v)
{
    if (strlen(s) != 16)
        return -EINVAL;
    uint64_t x = 0;
    for (int i = 0; i < 16; i++) {
        char c = s[i];
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                   : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10) : 16;
        if (d > 15)
            return -EINVAL;
        x = x << 4 | d;
    }
    *v = x;
    return 0;
}

static int chain_find(const struct disk_chain *c, const char *name)
{
    for (unsigned i = 0; i < c->n; i++)
        if (!strcmp(c->l[i].name, name))
            return (int)i;
    return -1;
}

int disk_chain_parse(const char *text, size_t len, struct disk_chain *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->top, sizeof(c->top), "%s", DISK_BASE);
    c->next = 1;
    if (len > CHAIN_MAX_BYTES) {
        ERR("chain file larger than %u bytes", CHAIN_MAX_BYTES);
        return -EINVAL;
    }
    size_t pos = 0;
    unsigned lineno = 0;
    bool magic = false, have_top = false, have_base = false;
    while (pos < len) {
        char line[512];
        size_t e = pos;
        while (e < len && text[e] != '\n')
            e++;
        lineno++;
        if (e - pos >= sizeof(line)) {
            ERR("chain line %u too long", lineno);
            return -EINVAL;
        }
        if (memchr(text + pos, 0, e - pos)) {
            ERR("chain line %u: NUL byte", lineno);
            return -EINVAL;
        }
        memcpy(line, text + pos, e - pos);
        line[e - pos] = 0;
        pos = e + 1;
        if (!line[0] || line[0] == '#')
            continue;
        char *tok[5], *save = NULL;
        unsigned nt = 0;
        for (char *s = strtok_r(line, " \t\r", &save); s; s = strtok_r(NULL, " \t\r", &save)) {
            if (nt == 5) {
                ERR("chain line %u: too many words", lineno);
                return -EINVAL;
            }
            tok[nt++] = s;
        }
        if (!nt)
            continue;
        if (!magic) {
            if (nt != 2 || strcmp(tok[0], "kvc-disk-chain") || strcmp(tok[1], "1")) {
                ERR("not a disk chain file (want '%s' first)", DISK_CHAIN_MAGIC);
                return -EINVAL;
            }
            magic = true;
            continue;
        }
        if (!strcmp(tok[0], "base") && nt == 2) {
            if (parse_hex64(tok[1], &c->base_id) < 0) {
                ERR("chain line %u: bad base id", lineno);
                return -EINVAL;
            }
            have_base = true;
        } else if (!strcmp(tok[0], "next") && nt == 2) {
            char *end;
            unsigned long v = strtoul(tok[1], &end, 10);
            if (*end || v < 1 || v > 999999) {
                ERR("chain line %u: bad next", lineno);
                return -EINVAL;
            }
            c->next = (unsigned)v;
        } else if (!strcmp(tok[0], "layer") && nt == 4) {
            if (c->n >= DISK_MAX_LAYERS) {
                ERR("chain: more than %u layers", DISK_MAX_LAYERS);
                return -EINVAL;
            }
            struct disk_chain_layer *l = &c->l[c->n];
            if (!name_ok(tok[1]) || is_base(tok[1]) || chain_find(c, tok[1]) >= 0
                || parse_hex64(tok[2], &l->id) < 0 || (!is_base(tok[3]) && !name_ok(tok[3]))) {
                ERR("chain line %u: bad layer", lineno);
                return -EINVAL;
            }
            snprintf(l->name, sizeof(l->name), "%s", tok[1]);
            snprintf(l->parent, sizeof(l->parent), "%s", tok[3]);
            c->n++;
        } else if (!strcmp(tok[0], "alias") && nt == 4) {
            if (c->naliases >= DISK_MAX_ALIASES) {
                ERR("chain: more than %u aliases", DISK_MAX_ALIASES);
                return -EINVAL;
            }
            struct disk_chain_alias *a = &c->a[c->naliases];
            uint64_t id;
            if (!name_ok(tok[1]) || is_base(tok[1]) || parse_hex64(tok[2], &id) < 0
                || (!is_base(tok[3]) && !name_ok(tok[3]))) {
                ERR("chain line %u: bad alias", lineno);
                return -EINVAL;
            }
            snprintf(a->from, sizeof(a->from), "%s", tok[1]);
            a->from_id = id;
            snprintf(a->to, sizeof(a->to), "%s", tok[3]);
            c->naliases++;
        } else if (!strcmp(tok[0], "merge") && nt == 2) {
            if (!name_ok(tok[1]) || is_base(tok[1]) || c->merge[0]) {
                ERR("chain line %u: bad merge", lineno);
                return -EINVAL;
            }
            snprintf(c->merge, sizeof(c->merge), "%s", tok[1]);
        } else if (!strcmp(tok[0], "top") && nt == 2) {
            if (!is_base(tok[1]) && !name_ok(tok[1])) {
                ERR("chain line %u: bad top", lineno);
                return -EINVAL;
            }
            snprintf(c->top, sizeof(c->top), "%s", tok[1]);
            have_top = true;
        } else {
            ERR("chain line %u: unknown record '%s'", lineno, tok[0]);
            return -EINVAL;
        }
    }
    if (!magic || !have_top || !have_base) {
        ERR("chain file incomplete (needs the magic line, base and top)");
        return -EINVAL;
    }
    /* Every parent exists and every path reaches the base within n steps. */
    for (unsigned i = 0; i < c->n; i++) {
        const char *p = c->l[i].name;
        unsigned steps = 0;
        while (!is_base(p)) {
            int k = chain_find(c, p);
            if (k < 0) {
                ERR("chain: layer %s has unknown parent %s", c->l[i].name, p);
                return -EINVAL;
            }
            if (++steps > c->n) {
                ERR("chain: loop through layer %s", c->l[i].name);
                return -EINVAL;
            }
            p = c->l[k].parent;
        }
    }
    if (!is_base(c->top) && chain_find(c, c->top) < 0) {
        ERR("chain: top %s is not a layer", c->top);
        return -EINVAL;
    }
    if (c->merge[0] && chain_find(c, c->merge) < 0) {
        ERR("chain: merge of %s, which is not a layer", c->merge);
        return -EINVAL;
    }
    for (unsigned i = 0; i < c->n; i++)
        if (!strcmp(c->l[i].parent, c->top)) {
            ERR("chain: top %s has a child (%s)", c->top, c->l[i].name);
            return -EINVAL;
        }
    return 0;
}

static int chain_write(struct disk *d)
{
    char path[PATH_MAX], tmp[PATH_MAX + 8];
    int rc = path_in(d, path, sizeof(path), d->base, ".chain");
    if (rc)
        return rc;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "we");
    if (!f)
        return -errno;
    const struct disk_chain *c = &d->chain;
    fprintf(f, "%s\n# layer tree of %s (docs/vmx.md, Disk snapshots); written by vmx\n",
            DISK_CHAIN_MAGIC, d->base);
    fprintf(f, "base %016llx\nnext %u\n", (unsigned long long)c->base_id, c->next);
    for (unsigned i = 0; i < c->n; i++)
        fprintf(f, "layer %s %016llx %s\n", c->l[i].name, (unsigned long long)c->l[i].id,
                c->l[i].parent);
    for (unsigned i = 0; i < c->naliases; i++)
        fprintf(f, "alias %s %016llx %s\n", c->a[i].from, (unsigned long long)c->a[i].from_id,
                c->a[i].to);
    if (c->merge[0])
        fprintf(f, "merge %s\n", c->merge);
    fprintf(f, "top %s\n", c->top);
    rc = fflush(f) || fsync(fileno(f)) < 0 ? -errno : 0;
    if (fclose(f) && !rc)
        rc = -EIO;
    if (!rc && rename(tmp, path) < 0)
        rc = -errno;
    if (!rc)
        rc = fsync_dir(d->dir);
    if (rc)
        unlink(tmp);
    return rc;
}

static int chain_load(struct disk *d, char *err, size_t errlen)
{
    char path[PATH_MAX];
    int rc = path_in(d, path, sizeof(path), d->base, ".chain");
    if (rc)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno != ENOENT) {
            ERR("%s: %s", path, strerror(errno));
            return -errno;
        }
        memset(&d->chain, 0, sizeof(d->chain));
        snprintf(d->chain.top, sizeof(d->chain.top), "%s", DISK_BASE);
        d->chain.next = 1;
        d->chain.base_id = random_id();
        return 0;
    }
    char *buf = malloc(CHAIN_MAX_BYTES + 1);
    if (!buf) {
        close(fd);
        return -ENOMEM;
    }
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, CHAIN_MAX_BYTES + 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got > CHAIN_MAX_BYTES)
            break;
    }
    close(fd);
    char why[200] = "";
    rc = disk_chain_parse(buf, got, &d->chain, why, sizeof(why));
    free(buf);
    if (rc)
        ERR("%s: %s", path, why);
    return rc;
}

/* ---- layers ---- */

int disk_map_header_check(const uint8_t *h, size_t len, uint64_t disk_size, uint64_t *id,
                          char *parent, char *err, size_t errlen)
{
    if (len < DISK_MAP_HDR || memcmp(h, DISK_MAP_MAGIC, 8)) {
        ERR("not a delta map (bad magic)");
        return -EINVAL;
    }
    if (le64(h + DISK_MAP_HDR - 8) != fnv64(h, DISK_MAP_HDR - 8)) {
        ERR("delta map header checksum mismatch");
        return -EINVAL;
    }
    uint32_t ver = le32(h + 8), cl = le32(h + 12), plen = le32(h + 40);
    uint64_t size = le64(h + 16), clusters = le64(h + 24);
    if (ver != 1 || cl != DISK_CLUSTER) {
        ERR("delta map version %u / cluster size %u not supported", ver, cl);
        return -EINVAL;
    }
    if (size != disk_size || clusters != (size + DISK_CLUSTER - 1) / DISK_CLUSTER) {
        ERR("delta map is for a %llu-byte disk, the base has %llu",
            (unsigned long long)size, (unsigned long long)disk_size);
        return -EINVAL;
    }
    if (plen == 0 || plen >= DISK_NAME_MAX) {
        ERR("delta map: bad parent name length %u", plen);
        return -EINVAL;
    }
    char p[DISK_NAME_MAX];
    memcpy(p, h + 44, plen);
    p[plen] = 0;
    if (strlen(p) != plen || (!is_base(p) && !name_ok(p))) {
        ERR("delta map: bad parent name");
        return -EINVAL;
    }
    *id = le64(h + 32);
    if (parent)
        memcpy(parent, p, plen + 1);
    return 0;
}

/* NAME after following merge aliases (bounded). */
static const char *alias_walk(const struct disk_chain *c, const char *name)
{
    for (unsigned steps = 0; steps <= c->naliases; steps++) {
        if (is_base(name) || chain_find(c, name) >= 0)
            return name;
        const char *to = NULL;
        for (unsigned i = 0; i < c->naliases; i++)
            if (!strcmp(c->a[i].from, name))
                to = c->a[i].to;
        if (!to)
            return name;
        name = to;
    }
    return name;
}

static void layer_close(struct disk_layer *l)
{
    if (l->fd >= 0)
        close(l->fd);
    if (l->map_fd >= 0)
        close(l->map_fd);
    free(l->bitmap);
    free(l->dirty);
    memset(l, 0, sizeof(*l));
    l->fd = l->map_fd = -1;
}

static int layer_open(struct disk *d, struct disk_layer *l, const struct disk_chain_layer *cl,
                      bool rdonly, char *err, size_t errlen)
{
    char path[PATH_MAX];
    int flags = (rdonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    int rc;
    memset(l, 0, sizeof(*l));
    l->fd = l->map_fd = -1;
    snprintf(l->name, sizeof(l->name), "%s", cl->name);
    l->id = cl->id;
    uint8_t *h = malloc(DISK_MAP_HDR);
    uint64_t bb = bitmap_bytes(d->clusters);
    uint64_t pages = (bb + DISK_MAP_HDR - 1) / DISK_MAP_HDR;
    l->bitmap = calloc(1, pages ? pages * DISK_MAP_HDR : 1);
    l->dirty = calloc(1, (pages + 7) / 8 + 1);
    if (!h || !l->bitmap || !l->dirty) {
        rc = -ENOMEM;
        goto fail;
    }
    if ((rc = path_in(d, path, sizeof(path), cl->name, ".map")) < 0)
        goto fail;
    if ((l->map_fd = open(path, flags)) < 0) {
        rc = -errno;
        ERR("delta map %s: %s", path, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(l->map_fd, &st) < 0 || !S_ISREG(st.st_mode)
        || (uint64_t)st.st_size != map_file_size(d->clusters)) {
        rc = -EINVAL;
        ERR("delta map %s: size %lld, want %llu", path, (long long)st.st_size,
            (unsigned long long)map_file_size(d->clusters));
        goto fail;
    }
    char parent[DISK_NAME_MAX], why[160] = "";
    uint64_t id;
    if ((rc = full_io(l->map_fd, false, h, DISK_MAP_HDR, 0)) < 0
        || (rc = disk_map_header_check(h, DISK_MAP_HDR, d->size, &id, parent, why, sizeof(why))) < 0) {
        ERR("delta map %s: %s", path, why[0] ? why : strerror(-rc));
        goto fail;
    }
    /* The header names the parent the delta was made on; a merge may since
     * have replaced that parent by its own parent (an alias). */
    if (id != cl->id || strcmp(alias_walk(&d->chain, parent), cl->parent)) {
        rc = -EINVAL;
        ERR("delta map %s does not match the chain file (id or parent differ)", path);
        goto fail;
    }
    if ((rc = full_io(l->map_fd, false, l->bitmap, pages * DISK_MAP_HDR, DISK_MAP_HDR)) < 0) {
        ERR("delta map %s: %s", path, strerror(-rc));
        goto fail;
    }
    bool past = d->clusters % 8 && bb && (l->bitmap[bb - 1] >> (d->clusters % 8));
    for (uint64_t i = bb; i < pages * DISK_MAP_HDR && !past; i++)
        past = l->bitmap[i] != 0;
    if (past) {
        rc = -EINVAL;
        ERR("delta map %s: bits set past the end of the disk", path);
        goto fail;
    }
    for (uint64_t i = 0; i < bb; i++)
        l->allocated += (uint64_t)__builtin_popcount(l->bitmap[i]);
    if ((rc = path_in(d, path, sizeof(path), cl->name, ".img")) < 0)
        goto fail;
    if ((l->fd = open(path, flags)) < 0) {
        rc = -errno;
        ERR("delta data %s: %s", path, strerror(errno));
        goto fail;
    }
    free(h);
    return 0;
fail:
    free(h);
    layer_close(l);
    return rc;
}

static int layer_flush(struct disk *d, struct disk_layer *l)
{
    if (d->readonly || l->fd < 0)
        return 0;
    if (fdatasync(l->fd) < 0)
        return -errno;
    if (!l->bitmap)
        return 0;
    uint64_t bb = bitmap_bytes(d->clusters);
    uint64_t pages = (bb + DISK_MAP_HDR - 1) / DISK_MAP_HDR;
    bool any = false;
    for (uint64_t p = 0; p < pages; p++) {
        if (!(l->dirty[p / 8] >> (p % 8) & 1))
            continue;
        uint64_t off = p * DISK_MAP_HDR;
        uint64_t n = bb - off < DISK_MAP_HDR ? bb - off : DISK_MAP_HDR;
        int rc = full_io(l->map_fd, true, l->bitmap + off, n, DISK_MAP_HDR + off);
        if (rc)
            return rc;
        l->dirty[p / 8] &= (uint8_t)~(1u << (p % 8));
        any = true;
    }
    if (any && fdatasync(l->map_fd) < 0)
        return -errno;
    return 0;
}

/* Path from the top down to the base, as chain indexes; returns the count
 * (the base not included). */
static int chain_path(const struct disk_chain *c, const char *top, int *idx)
{
    int n = 0;
    const char *p = top;
    while (!is_base(p)) {
        int k = chain_find(c, p);
        if (k < 0 || n >= (int)DISK_MAX_LAYERS - 1)
            return -EINVAL;
        idx[n++] = k;
        p = c->l[k].parent;
    }
    return n;
}

static void close_layers(struct disk *d)
{
    for (unsigned i = 0; i < d->n; i++)
        layer_close(&d->layers[i]);
    d->n = 0;
}

static int open_layers(struct disk *d, char *err, size_t errlen)
{
    char path[PATH_MAX];
    int rc, idx[DISK_MAX_LAYERS];
    if ((rc = path_in(d, path, sizeof(path), d->base, "")) < 0)
        return rc;
    struct disk_layer *b = &d->layers[0];
    memset(b, 0, sizeof(*b));
    b->map_fd = -1;
    snprintf(b->name, sizeof(b->name), "%s", DISK_BASE);
    b->id = d->chain.base_id;
    int np = chain_path(&d->chain, d->chain.top, idx);
    if (np < 0) {
        ERR("disk chain: top %s does not lead to the base", d->chain.top);
        return -EINVAL;
    }
    /* Only the top is written; the layers below are frozen. */
    b->fd = open(path, ((d->readonly || np > 0) ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (b->fd < 0) {
        rc = -errno;
        ERR("disk %s: %s", path, strerror(errno));
        return rc;
    }
    struct stat st;
    if (fstat(b->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        ERR("disk %s: not a regular file", path);
        close(b->fd);
        b->fd = -1;
        return -EINVAL;
    }
    uint64_t size = (uint64_t)st.st_size & ~(uint64_t)(DISK_SECTOR - 1);
    if (d->size && size != d->size) {
        ERR("disk %s changed size (%llu, was %llu)", path, (unsigned long long)size,
            (unsigned long long)d->size);
        close(b->fd);
        b->fd = -1;
        return -EINVAL;
    }
    if (!size) {
        ERR("disk %s is smaller than one sector", path);
        close(b->fd);
        b->fd = -1;
        return -EINVAL;
    }
    d->size = size;
    d->clusters = (size + DISK_CLUSTER - 1) / DISK_CLUSTER;
    d->n = 1;
    for (int i = np - 1; i >= 0; i--) {
        bool top = i == 0;
        rc = layer_open(d, &d->layers[d->n], &d->chain.l[idx[i]], d->readonly || !top, err, errlen);
        if (rc < 0) {
            close_layers(d);
            return rc;
        }
        d->n++;
    }
    return 0;
}

int disk_open(struct disk *d, const char *path, bool readonly, char *err, size_t errlen)
{
    memset(d, 0, sizeof(*d));
    const char *slash = strrchr(path, '/');
    if (!slash || !slash[1]) {
        ERR("disk path %s: want a full path to a file", path);
        return -EINVAL;
    }
    if ((size_t)(slash - path) >= sizeof(d->dir) || strlen(slash + 1) >= sizeof(d->base)) {
        ERR("disk path %s too long", path);
        return -ENAMETOOLONG;
    }
    memcpy(d->dir, path, (size_t)(slash - path));
    d->dir[slash == path ? 1 : slash - path] = 0;
    if (slash == path)
        d->dir[0] = '/';
    snprintf(d->base, sizeof(d->base), "%s", slash + 1);
    d->readonly = readonly;
    d->bounce = malloc(DISK_CLUSTER);
    if (!d->bounce)
        return -ENOMEM;
    int rc = chain_load(d, err, errlen);
    if (!rc)
        rc = open_layers(d, err, errlen);
    if (!rc && d->chain.merge[0] && !readonly) {
        struct disk_merge_info mi;
        memset(&mi, 0, sizeof(mi));
        kvc_warn("disk %s: finishing the merge of %s that was under way", d->base, d->chain.merge);
        close_layers(d);
        rc = finish_merge(d, &mi, err, errlen);
        if (!rc)
            rc = open_layers(d, err, errlen);
    }
    if (rc) {
        free(d->bounce);
        d->bounce = NULL;
        return rc;
    }
    d->is_open = true;
    return 0;
}

void disk_close(struct disk *d)
{
    if (!d || !d->is_open)
        return;
    int rc = disk_flush(d);
    if (rc)
        kvc_err("disk %s: flush at close: %s", d->base, strerror(-rc));
    close_layers(d);
    free(d->bounce);
    d->bounce = NULL;
    d->is_open = false;
}

int disk_reopen(struct disk *d, char *err, size_t errlen)
{
    if (!d->is_open)
        return -EBADF;
    disk_flush(d);
    close_layers(d);
    int rc = chain_load(d, err, errlen);
    if (!rc)
        rc = open_layers(d, err, errlen);
    return rc;
}

/* ---- I/O ---- */

static bool range_ok(const struct disk *d, uint64_t off, uint64_t len)
{
    /* n is 0 only after layers failed to load again (logged): no I/O. */
    return d->is_open && d->n > 0 && !(off % DISK_SECTOR) && !(len % DISK_SECTOR) && off <= d->size
        && len <= d->size - off;
}

static unsigned src_layer(const struct disk *d, uint64_t c)
{
    for (unsigned i = d->n - 1; i > 0; i--)
        if (bit(&d->layers[i], c))
            return i;
    return 0;
}

int disk_read(struct disk *d, uint64_t off, const struct iovec *iov, unsigned n, uint64_t len)
{
    if (!range_ok(d, off, len))
        return -EINVAL;
    if (d->n == 1) {
        int rc = full_iov(d->layers[0].fd, false, iov, n, off);
        if (!rc)
            d->read_bytes += len;
        return rc;
    }
    uint64_t pos = off, end = off + len;
    while (pos < end) {
        uint64_t c = pos / DISK_CLUSTER;
        unsigned src = src_layer(d, c);
        uint64_t run_end = (c + 1) * DISK_CLUSTER;
        while (run_end < end && src_layer(d, run_end / DISK_CLUSTER) == src)
            run_end += DISK_CLUSTER;
        if (run_end > end)
            run_end = end;
        struct iovec sub[MAX_IOV];
        unsigned k = disk_iov_sub(iov, n, pos - off, run_end - pos, sub, MAX_IOV);
        if (!k)
            return -EINVAL;
        int rc = full_iov(d->layers[src].fd, false, sub, k, pos);
        if (rc)
            return rc;
        pos = run_end;
    }
    d->read_bytes += len;
    return 0;
}

int disk_write(struct disk *d, uint64_t off, const struct iovec *iov, unsigned n, uint64_t len)
{
    if (!range_ok(d, off, len))
        return -EINVAL;
    if (d->readonly)
        return -EROFS;
    if (d->move_dirty)          /* a disk move re-copies these clusters */
        for (uint64_t c = off / DISK_CLUSTER; c * DISK_CLUSTER < off + len; c++)
            d->move_dirty[c / 8] |= (uint8_t)(1u << (c % 8));
    struct disk_layer *t = &d->layers[d->n - 1];
    uint64_t pos = off, end = off + len;
    while (pos < end) {
        uint64_t c = pos / DISK_CLUSTER, cs = c * DISK_CLUSTER;
        uint64_t ce = cs + DISK_CLUSTER < d->size ? cs + DISK_CLUSTER : d->size;
        uint64_t seg_end = end < ce ? end : ce;
        int rc;
        if ((pos != cs || seg_end != ce) && !bit(t, c)) {
            /* Part of a cluster this layer does not hold yet: copy the rest
             * from below first (the map tracks whole clusters). */
            struct iovec b = { .iov_base = d->bounce, .iov_len = ce - cs };
            if ((rc = disk_read(d, cs, &b, 1, ce - cs)) < 0)
                return rc;
            d->read_bytes -= ce - cs;
            iov_copy_out(iov, n, pos - off, d->bounce + (pos - cs), seg_end - pos);
            if ((rc = full_io(t->fd, true, d->bounce, ce - cs, cs)) < 0)
                return rc;
            set_bit(t, c);
            d->cow_clusters++;
            pos = seg_end;
            continue;
        }
        uint64_t run_end = seg_end;
        while (run_end < end) {
            uint64_t c2 = run_end / DISK_CLUSTER, s2 = c2 * DISK_CLUSTER;
            uint64_t e2 = s2 + DISK_CLUSTER < d->size ? s2 + DISK_CLUSTER : d->size;
            if (end < e2 && !bit(t, c2))
                break;
            run_end = end < e2 ? end : e2;
        }
        struct iovec sub[MAX_IOV];
        unsigned k = disk_iov_sub(iov, n, pos - off, run_end - pos, sub, MAX_IOV);
        if (!k)
            return -EINVAL;
        if ((rc = full_iov(t->fd, true, sub, k, pos)) < 0)
            return rc;
        for (uint64_t x = pos / DISK_CLUSTER; x * DISK_CLUSTER < run_end; x++)
            set_bit(t, x);
        pos = run_end;
    }
    d->write_bytes += len;
    return 0;
}

int disk_flush(struct disk *d)
{
    if (!d->is_open)
        return -EBADF;
    d->flushes++;
    /* Only the top is ever written; the layers below are frozen. */
    return d->n ? layer_flush(d, &d->layers[d->n - 1]) : 0;
}

/* ---- snapshots ---- */

static const char *stem(const struct disk *d, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", d->base);
    size_t n = strlen(buf);
    if (n > 4 && !strcmp(buf + n - 4, ".img"))
        buf[n - 4] = 0;
    return buf;
}

static uint64_t layer_id(const struct disk *d, const char *name)
{
    if (is_base(name))
        return d->chain.base_id;
    int k = chain_find(&d->chain, name);
    return k >= 0 ? d->chain.l[k].id : 0;
}

static void unlink_layer(const struct disk *d, const char *name)
{
    char p[PATH_MAX];
    if (!path_in(d, p, sizeof(p), name, ".img"))
        unlink(p);
    if (!path_in(d, p, sizeof(p), name, ".map"))
        unlink(p);
}

/* Create the files of a new empty delta on PARENT and add it to the chain
 * (in memory); the caller writes the chain. */
static int new_delta(struct disk *d, const char *parent, char *err, size_t errlen)
{
    struct disk_chain *c = &d->chain;
    if (c->n >= DISK_MAX_LAYERS - 1) {
        ERR("disk has %u delta layers already: delete snapshots first", c->n);
        return -ENOSPC;
    }
    char st[DISK_NAME_MAX], name[DISK_NAME_MAX];
    stem(d, st, sizeof(st));
    st[DISK_NAME_MAX - 20] = 0;     /* room for -NNNNNN-delta */
    do {
        if (c->next > 999999) {
            ERR("delta numbers exhausted");
            return -ENOSPC;
        }
        snprintf(name, sizeof(name), "%.100s-%06u-delta", st, c->next++);
    } while (chain_find(c, name) >= 0);
    uint64_t id = random_id();
    char path[PATH_MAX];
    int rc, fd = -1, mfd = -1;
    uint8_t *h = calloc(1, DISK_MAP_HDR);
    if (!h)
        return -ENOMEM;
    /* A file of this name that the chain does not list is left over from a
     * crash before its chain was written: it is truncated and reused. */
    if ((rc = path_in(d, path, sizeof(path), name, ".img")) < 0)
        goto out;
    if ((fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0
        || ftruncate(fd, (off_t)d->size) < 0 || fdatasync(fd) < 0) {
        rc = -errno;
        ERR("delta %s: %s", path, strerror(errno));
        goto out;
    }
    if ((rc = path_in(d, path, sizeof(path), name, ".map")) < 0)
        goto out;
    memcpy(h, DISK_MAP_MAGIC, 8);
    put32(h + 8, 1);
    put32(h + 12, DISK_CLUSTER);
    put64(h + 16, d->size);
    put64(h + 24, d->clusters);
    put64(h + 32, id);
    put32(h + 40, (uint32_t)strlen(parent));
    memcpy(h + 44, parent, strlen(parent));
    put64(h + DISK_MAP_HDR - 8, fnv64(h, DISK_MAP_HDR - 8));
    if ((mfd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0
        || ftruncate(mfd, (off_t)map_file_size(d->clusters)) < 0) {
        rc = -errno;
        ERR("delta map %s: %s", path, strerror(errno));
        goto out;
    }
    if ((rc = full_io(mfd, true, h, DISK_MAP_HDR, 0)) < 0 || (fdatasync(mfd) < 0 && (rc = -errno))) {
        ERR("delta map %s: %s", path, strerror(-rc));
        goto out;
    }
    struct disk_chain_layer *l = &c->l[c->n++];
    snprintf(l->name, sizeof(l->name), "%s", name);
    snprintf(l->parent, sizeof(l->parent), "%s", parent);
    l->id = id;
    snprintf(c->top, sizeof(c->top), "%s", name);
out:
    if (fd >= 0)
        close(fd);
    if (mfd >= 0)
        close(mfd);
    free(h);
    return rc;
}

static void chain_remove(struct disk_chain *c, const char *name)
{
    int k = chain_find(c, name);
    if (k < 0)
        return;
    memmove(&c->l[k], &c->l[k + 1], (c->n - (unsigned)k - 1) * sizeof(c->l[0]));
    c->n--;
}

/* Reload the layers after the chain changed; a failure here leaves the
 * disk closed for I/O (requests then fail) and is logged. */
static int relayer(struct disk *d, char *err, size_t errlen)
{
    close_layers(d);
    int rc = open_layers(d, err, errlen);
    if (rc)
        kvc_err("disk %s: %s", d->base, err ? err : strerror(-rc));
    return rc;
}

int disk_snapshot(struct disk *d, char frozen[DISK_NAME_MAX], uint64_t *id, char *err, size_t errlen)
{
    if (!d->is_open)
        return -EBADF;
    if (d->move_dirty) {
        ERR("a disk move is under way");
        return -EBUSY;
    }
    if (d->readonly) {
        ERR("disk is read-only");
        return -EROFS;
    }
    int rc = disk_flush(d);
    if (rc) {
        ERR("flush: %s", strerror(-rc));
        return rc;
    }
    struct disk_chain saved = d->chain;
    char old[DISK_NAME_MAX];
    snprintf(old, sizeof(old), "%s", d->chain.top);
    if ((rc = new_delta(d, old, err, errlen)) < 0) {
        d->chain = saved;
        return rc;
    }
    if ((rc = chain_write(d)) < 0) {
        ERR("chain file: %s", strerror(-rc));
        unlink_layer(d, d->chain.top);
        d->chain = saved;
        return rc;
    }
    snprintf(frozen, DISK_NAME_MAX, "%s", old);
    *id = layer_id(d, old);
    kvc_info("disk %s: snapshot froze %s, writes go to %s", d->base, old, d->chain.top);
    return relayer(d, err, errlen);
}

void disk_snapshot_abort(struct disk *d, const char *frozen)
{
    struct disk_chain *c = &d->chain;
    int k = chain_find(c, c->top);
    if (!d->is_open || k < 0 || !d->n || strcmp(c->l[k].parent, frozen) || d->layers[d->n - 1].allocated)
        return;
    char top[DISK_NAME_MAX];
    snprintf(top, sizeof(top), "%s", c->top);
    struct disk_chain saved = *c;
    chain_remove(c, top);
    snprintf(c->top, sizeof(c->top), "%s", frozen);
    if (chain_write(d) < 0) {
        *c = saved;
        return;
    }
    unlink_layer(d, top);
    relayer(d, NULL, 0);
}

/* Follow aliases from NAME/ID to a live layer; checks the id of the first
 * name (a layer re-created under the same name is not the same layer). */
static int resolve(const struct disk *d, const char *name, uint64_t id, char *out, char *err, size_t errlen)
{
    const struct disk_chain *c = &d->chain;
    if (is_base(name) || chain_find(c, name) >= 0) {
        if (layer_id(d, name) != id) {
            ERR("disk layer %s is not the one the snapshot recorded (id differs)", name);
            return -ESTALE;
        }
        snprintf(out, DISK_NAME_MAX, "%s", name);
        return 0;
    }
    const char *p = name;
    bool first = true;
    for (unsigned steps = 0; steps <= c->naliases; steps++) {
        const struct disk_chain_alias *a = NULL;
        for (unsigned i = 0; i < c->naliases; i++)
            if (!strcmp(c->a[i].from, p))
                a = &c->a[i];
        if (!a)
            break;
        if (first && a->from_id != id) {
            ERR("disk layer %s is not the one the snapshot recorded (id differs)", name);
            return -ESTALE;
        }
        first = false;
        p = a->to;
        if (is_base(p) || chain_find(c, p) >= 0) {
            snprintf(out, DISK_NAME_MAX, "%s", p);
            return 0;
        }
    }
    ERR("disk layer %s of the snapshot no longer exists", name);
    return -ENOENT;
}

int disk_revert(struct disk *d, const char *frozen, uint64_t id, char *err, size_t errlen)
{
    if (!d->is_open)
        return -EBADF;
    if (d->move_dirty) {
        ERR("a disk move is under way");
        return -EBUSY;
    }
    if (d->readonly) {
        ERR("disk is read-only");
        return -EROFS;
    }
    char l[DISK_NAME_MAX];
    int rc = resolve(d, frozen, id, l, err, errlen);
    if (rc)
        return rc;
    disk_flush(d);
    struct disk_chain saved = d->chain, *c = &d->chain;
    char old[DISK_NAME_MAX];
    snprintf(old, sizeof(old), "%s", c->top);
    /* The current top is never frozen by a snapshot: what it holds is the
     * state being reverted away from. */
    bool drop = !is_base(old) && strcmp(old, l);
    if (drop)
        chain_remove(c, old);
    if ((rc = new_delta(d, l, err, errlen)) < 0 || (rc = chain_write(d)) < 0) {
        if (rc != -ENOSPC && rc != -ENAMETOOLONG)
            ERR("revert: %s", strerror(-rc));
        if (strcmp(c->top, saved.top))
            unlink_layer(d, c->top);
        *c = saved;
        return rc;
    }
    if (drop)
        unlink_layer(d, old);
    kvc_info("disk %s: reverted to %s (new top %s%s%s)", d->base, l, c->top,
             drop ? ", dropped " : "", drop ? old : "");
    return relayer(d, err, errlen);
}

/* Copy every cluster CHILD holds into PARENT (files in D's folder).  Reads
 * and writes whole runs; the parent's map (if a delta) gets the bits after
 * its data is synced. */
static int merge_files(struct disk *d, const struct disk_chain_layer *child, const char *parent,
                       uint64_t *copied, char *err, size_t errlen)
{
    struct disk_layer cl, pl;
    int rc;
    memset(&pl, 0, sizeof(pl));
    pl.fd = pl.map_fd = -1;
    if ((rc = layer_open(d, &cl, child, true, err, errlen)) < 0)
        return rc;
    if (is_base(parent)) {
        char path[PATH_MAX];
        if ((rc = path_in(d, path, sizeof(path), d->base, "")) < 0)
            goto out;
        if ((pl.fd = open(path, O_RDWR | O_CLOEXEC)) < 0) {
            rc = -errno;
            ERR("disk %s: %s", path, strerror(errno));
            goto out;
        }
    } else {
        int k = chain_find(&d->chain, parent);
        if (k < 0) {
            rc = -ENOENT;
            goto out;
        }
        if ((rc = layer_open(d, &pl, &d->chain.l[k], false, err, errlen)) < 0)
            goto out;
    }
    uint8_t *buf = malloc(MERGE_BUF);
    if (!buf) {
        rc = -ENOMEM;
        goto out;
    }
    uint64_t per = MERGE_BUF / DISK_CLUSTER;
    for (uint64_t c = 0; c < d->clusters && !rc;) {
        if (!bit(&cl, c)) {
            c++;
            continue;
        }
        uint64_t e = c;
        while (e < d->clusters && e - c < per && bit(&cl, e))
            e++;
        uint64_t off = c * DISK_CLUSTER;
        uint64_t end = e * DISK_CLUSTER < d->size ? e * DISK_CLUSTER : d->size;
        rc = full_io(cl.fd, false, buf, end - off, off);
        if (!rc)
            rc = full_io(pl.fd, true, buf, end - off, off);
        for (uint64_t x = c; x < e && !rc; x++)
            set_bit(&pl, x);
        *copied += e - c;
        c = e;
    }
    free(buf);
    if (!rc)
        rc = layer_flush(d, &pl);
    if (rc)
        ERR("merge %s into %s: %s", child->name, parent, strerror(-rc));
out:
    layer_close(&cl);
    layer_close(&pl);
    return rc;
}

static bool fault(const char *name)
{
    const char *f = getenv("KVC_VMX_FAULT");
    return f && !strcmp(f, name);
}

/* The second half of a merge, with the intent already in the chain file
 * (chain.merge) and the layers closed: copy the child into its parent,
 * then the chain file without the child (the commit point), then delete
 * the child's files.  Copying again after a crash is harmless. */
static int finish_merge(struct disk *d, struct disk_merge_info *info, char *err, size_t errlen)
{
    struct disk_chain *c = &d->chain;
    int k = chain_find(c, c->merge);
    if (k < 0)
        return -EINVAL;
    struct disk_chain_layer child = c->l[k];
    char l[DISK_NAME_MAX];
    snprintf(l, sizeof(l), "%s", child.parent);
    int rc = merge_files(d, &child, l, &info->clusters, err, errlen);
    if (rc)
        return rc;
    if (fault("disk-merge-copied")) {
        kvc_err("KVC_VMX_FAULT=disk-merge-copied: exiting in the merge of %s", child.name);
        _exit(99);
    }
    struct disk_chain saved = *c;
    for (unsigned i = 0; i < c->n; i++)
        if (!strcmp(c->l[i].parent, child.name))
            snprintf(c->l[i].parent, sizeof(c->l[i].parent), "%s", l);
    chain_remove(c, child.name);
    if (c->naliases == DISK_MAX_ALIASES) {
        memmove(&c->a[0], &c->a[1], (DISK_MAX_ALIASES - 1) * sizeof(c->a[0]));
        c->naliases--;
    }
    struct disk_chain_alias *a = &c->a[c->naliases++];
    snprintf(a->from, sizeof(a->from), "%s", child.name);
    a->from_id = child.id;
    snprintf(a->to, sizeof(a->to), "%s", l);
    if (!strcmp(c->top, child.name))
        snprintf(c->top, sizeof(c->top), "%s", l);
    c->merge[0] = 0;
    if ((rc = chain_write(d)) < 0) {
        ERR("chain file: %s", strerror(-rc));
        *c = saved;
        return rc;
    }
    unlink_layer(d, child.name);
    snprintf(info->merged, sizeof(info->merged), "%s", child.name);
    snprintf(info->into, sizeof(info->into), "%s", l);
    kvc_info("disk %s: merged %s into %s (%llu clusters)", d->base, child.name, l,
             (unsigned long long)info->clusters);
    return 0;
}

int disk_delete_check(struct disk *d, const char *frozen, uint64_t id, char *err, size_t errlen)
{
    if (!d->is_open)
        return -EBADF;
    if (d->move_dirty) {
        ERR("a disk move is under way");
        return -EBUSY;
    }
    if (d->readonly) {
        ERR("disk is read-only");
        return -EROFS;
    }
    char l[DISK_NAME_MAX];
    int rc = resolve(d, frozen, id, l, err, errlen);
    if (rc)
        return rc;
    unsigned nk = 0;
    for (unsigned i = 0; i < d->chain.n; i++)
        if (!strcmp(d->chain.l[i].parent, l))
            nk++;
    if (nk > 1) {
        ERR("disk layer %s has %u child layers: a revert left a branch; "
            "delete the other branch's snapshots first", l, nk);
        return -EBUSY;
    }
    return 0;
}

int disk_delete_snapshot(struct disk *d, const char *frozen, uint64_t id, struct disk_merge_info *info,
                         char *err, size_t errlen)
{
    memset(info, 0, sizeof(*info));
    if (!d->is_open)
        return -EBADF;
    if (d->move_dirty) {
        ERR("a disk move is under way");
        return -EBUSY;
    }
    if (d->readonly) {
        ERR("disk is read-only");
        return -EROFS;
    }
    char l[DISK_NAME_MAX];
    int rc = resolve(d, frozen, id, l, err, errlen);
    if (rc)
        return rc;
    struct disk_chain *c = &d->chain, saved;
    int kids[DISK_MAX_LAYERS], nk = 0;
    for (unsigned i = 0; i < c->n; i++)
        if (!strcmp(c->l[i].parent, l))
            kids[nk++] = (int)i;
    if (nk > 1) {
        ERR("disk layer %s has %d child layers (%s, %s%s): a revert left a branch; "
            "delete the other branch's snapshots first", l, nk, c->l[kids[0]].name,
            c->l[kids[1]].name, nk > 2 ? ", ..." : "");
        return -EBUSY;
    }
    snprintf(info->into, sizeof(info->into), "%s", l);
    if ((rc = disk_flush(d)) < 0)
        return rc;
    saved = *c;
    if (nk == 0) {
        /* Nothing was built on it (its branch was reverted away from). */
        if (is_base(l) || !strcmp(l, c->top))
            return 0;
        chain_remove(c, l);
        if ((rc = chain_write(d)) < 0) {
            *c = saved;
            return rc;
        }
        unlink_layer(d, l);
        info->removed = true;
        return relayer(d, err, errlen);
    }
    /* The intent first: a crash from here on finishes the merge at the
     * next open (the view through the child is the same meanwhile). */
    snprintf(c->merge, sizeof(c->merge), "%s", c->l[kids[0]].name);
    if ((rc = chain_write(d)) < 0) {
        ERR("chain file: %s", strerror(-rc));
        *c = saved;
        return rc;
    }
    close_layers(d);
    rc = finish_merge(d, info, err, errlen);
    int r2 = open_layers(d, rc ? NULL : err, errlen);
    return rc ? rc : r2;
}
