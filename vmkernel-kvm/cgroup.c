/* cgroup v1/v2 placement of VMs (see cgroup.h). */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "cgroup.h"

KVC_LOG_MODULE(cgroup);

/* Hierarchies a VM is placed in.  On v2 only H_CPU is used (it is the
 * unified hierarchy and carries memory too). */
enum { H_CPU, H_ACCT, H_MEM, H_MAX };

struct kvc_cg_root {
    enum kvc_cg_version version;
    bool fake;
    char *mnt[H_MAX];           /* hierarchy mount points (NULL: absent) */
    char *dir[H_MAX];           /* <mnt>/<parent> */
    char *parent;
    char desc[512];
};

struct kvc_cg_vm {
    struct kvc_cg_root *root;
    char *dir[H_MAX];
};

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static char *path_join(const char *a, const char *b)
{
    char *p;
    if (asprintf(&p, "%s/%s", a, b) < 0)
        return NULL;
    return p;
}

/* Reads a small control file into buf (NUL-terminated, trailing newline kept). */
static int read_file(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t off = 0;
    for (;;) {
        ssize_t n = read(fd, buf + off, len - 1 - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = -errno;
            close(fd);
            return e;
        }
        if (n == 0 || off + (size_t)n >= len - 1) {
            off += (size_t)n;
            break;
        }
        off += (size_t)n;
    }
    close(fd);
    buf[off] = '\0';
    return 0;
}

static int write_file(const struct kvc_cg_root *r, const char *dir, const char *name,
                      const char *val)
{
    char *path = path_join(dir, name);
    if (!path)
        return -ENOMEM;
    int flags = O_WRONLY | O_CLOEXEC | (r->fake ? O_CREAT | O_APPEND : 0);
    int fd = open(path, flags, 0644);
    int rc = 0;
    if (fd < 0) {
        rc = -errno;
        kvc_warn("open %s: %s", path, strerror(-rc));
        goto out;
    }
    size_t len = strlen(val);
    ssize_t n = write(fd, val, len);
    if (n < 0 || (size_t)n != len) {
        rc = n < 0 ? -errno : -EIO;
        kvc_warn("write '%s' to %s: %s", val, path, strerror(-rc));
    }
    close(fd);
out:
    free(path);
    return rc;
}

static int read_u64_file(const char *dir, const char *name, uint64_t *out)
{
    char buf[64];
    char *path = path_join(dir, name);
    if (!path)
        return -ENOMEM;
    int rc = read_file(path, buf, sizeof(buf));
    free(path);
    if (rc < 0)
        return rc;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (errno || end == buf)
        return -EINVAL;
    *out = v;
    return 0;
}

/* Finds "key <u64>" in a flat-keyed file such as cpu.stat or memory.stat. */
static int read_keyed(const char *dir, const char *name, const char *key, uint64_t *out)
{
    char buf[4096];
    char *path = path_join(dir, name);
    if (!path)
        return -ENOMEM;
    int rc = read_file(path, buf, sizeof(buf));
    free(path);
    if (rc < 0)
        return rc;
    size_t kl = strlen(key);
    for (char *line = buf; line && *line; ) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (strncmp(line, key, kl) == 0 && line[kl] == ' ') {
            *out = strtoull(line + kl + 1, NULL, 10);
            return 0;
        }
        line = nl ? nl + 1 : NULL;
    }
    return -ENOENT;
}

static bool controllers_have(const char *file, const char *ctl)
{
    char buf[512];
    if (read_file(file, buf, sizeof(buf)) < 0)
        return false;
    size_t cl = strlen(ctl);
    for (char *p = buf; (p = strstr(p, ctl)) != NULL; p += cl) {
        bool start = p == buf || p[-1] == ' ';
        bool end = p[cl] == '\0' || p[cl] == ' ' || p[cl] == '\n';
        if (start && end)
            return true;
    }
    return false;
}

/* Creates dir and every missing parent below base (base must exist). */
static int mkdir_below(const char *base, const char *rel, bool fake, const char *const *fake_files)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s", base, rel);
    if (n < 0 || (size_t)n >= sizeof(path))
        return -ENAMETOOLONG;
    size_t blen = strlen(base);
    for (char *p = path + blen + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(path, 0755) < 0 && errno != EEXIST) {
                int e = -errno;
                kvc_err("mkdir %s: %s", path, strerror(-e));
                return e;
            }
            if (fake && fake_files) {
                for (const char *const *f = fake_files; *f; f++) {
                    char fp[PATH_MAX + 64];
                    snprintf(fp, sizeof(fp), "%s/%s", path, *f);
                    if (!is_file(fp)) {
                        int fd = open(fp, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                        if (fd >= 0)
                            close(fd);
                    }
                }
            }
            *p = c;
            if (c == '\0')
                break;
        }
    }
    return 0;
}

static const char *const fake_v1_files[] = { "cgroup.procs", NULL };
static const char *const fake_v2_files[] = { "cgroup.procs", "cgroup.subtree_control", NULL };

static int detect(struct kvc_cg_root *r, const char *fs, enum kvc_cg_version want)
{
    char *p = NULL;
    /* v2 first: the unified hierarchy at the root or at <root>/unified, but
     * only if it really offers the cpu controller. */
    if (want != KVC_CG_V1) {
        const char *cands[] = { "", "/unified" };
        for (size_t i = 0; i < 2; i++) {
            if (asprintf(&p, "%s%s/cgroup.controllers", fs, cands[i]) < 0)
                return -ENOMEM;
            bool ok = controllers_have(p, "cpu");
            free(p);
            if (ok) {
                r->version = KVC_CG_V2;
                if (asprintf(&r->mnt[H_CPU], "%s%s", fs, cands[i]) < 0)
                    return -ENOMEM;
                return 0;
            }
        }
        if (want == KVC_CG_V2) {
            kvc_err("no cgroup v2 hierarchy with the cpu controller under %s", fs);
            return -ENOTSUP;
        }
    }
    /* v1: cpu in "cpu" or "cpu,cpuacct"; cpuacct separately or shared. */
    const char *cpu_dirs[] = { "cpu", "cpu,cpuacct", "cpuacct,cpu" };
    for (size_t i = 0; i < 3 && !r->mnt[H_CPU]; i++) {
        if (asprintf(&p, "%s/%s/cpu.shares", fs, cpu_dirs[i]) < 0)
            return -ENOMEM;
        if (is_file(p) && asprintf(&r->mnt[H_CPU], "%s/%s", fs, cpu_dirs[i]) < 0)
            r->mnt[H_CPU] = NULL;
        free(p);
    }
    if (!r->mnt[H_CPU]) {
        kvc_err("no cgroup v1 cpu controller and no cgroup v2 cpu controller under %s", fs);
        return -ENOTSUP;
    }
    /* cpuacct: in the cpu mount if it has cpuacct.usage, else its own mount. */
    if (asprintf(&p, "%s/cpuacct.usage", r->mnt[H_CPU]) < 0)
        return -ENOMEM;
    if (is_file(p)) {
        r->mnt[H_ACCT] = NULL;          /* same hierarchy as cpu */
    } else {
        free(p);
        if (asprintf(&p, "%s/cpuacct", fs) < 0)
            return -ENOMEM;
        if (is_dir(p)) {
            r->mnt[H_ACCT] = p;
            p = NULL;
        }
    }
    free(p);
    if (asprintf(&p, "%s/memory", fs) < 0)
        return -ENOMEM;
    if (is_dir(p)) {
        r->mnt[H_MEM] = p;
        p = NULL;
    }
    free(p);
    r->version = KVC_CG_V1;
    return 0;
}

/* v2: every cgroup from the mount root down to the parent must delegate the
 * controllers to its children. */
static int v2_enable(struct kvc_cg_root *r)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s", r->mnt[H_CPU]);
    const char *rel = r->parent;
    int rc = 0;
    for (;;) {
        char ctl[PATH_MAX + 32];
        snprintf(ctl, sizeof(ctl), "%s/cgroup.controllers", path);
        static const char *const want[] = { "cpu", "memory" };
        for (size_t i = 0; i < 2; i++) {
            if (!r->fake && !controllers_have(ctl, want[i]))
                continue;
            char v[16];
            snprintf(v, sizeof(v), "+%s\n", want[i]);
            int w = write_file(r, path, "cgroup.subtree_control", v);
            if (w < 0 && i == 0) {
                kvc_err("cannot delegate the cpu controller at %s: %s "
                        "(a v2 cgroup with processes cannot have controlled children)",
                        path, strerror(-w));
                rc = w;
            }
        }
        if (rc < 0 || !*rel)
            break;
        const char *slash = strchr(rel, '/');
        size_t n = slash ? (size_t)(slash - rel) : strlen(rel);
        size_t pl = strlen(path);
        if (pl + 1 + n >= sizeof(path))
            return -ENAMETOOLONG;
        path[pl] = '/';
        memcpy(path + pl + 1, rel, n);
        path[pl + 1 + n] = '\0';
        rel = slash ? slash + 1 : rel + n;
    }
    return rc;
}

static bool valid_rel(const char *s, bool allow_slash)
{
    if (!s || !*s || strlen(s) > 200)
        return false;
    if (s[0] == '/' || strstr(s, "..") || s[strlen(s) - 1] == '/')
        return false;
    for (const char *p = s; *p; p++) {
        if (*p == '/' && allow_slash)
            continue;
        if (!(((*p | 32) >= 'a' && (*p | 32) <= 'z') || (*p >= '0' && *p <= '9')
              || *p == '-' || *p == '_' || *p == '.'))
            return false;
    }
    return true;
}

int kvc_cg_root_open(const struct kvc_cg_root_opts *o, struct kvc_cg_root **out)
{
    *out = NULL;
    if (!valid_rel(o->parent, true)) {
        kvc_err("invalid cgroup parent '%s'", o->parent ? o->parent : "");
        return -EINVAL;
    }
    struct kvc_cg_root *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->fake = o->fake;
    r->parent = strdup(o->parent);
    int rc = r->parent ? detect(r, o->fsroot ? o->fsroot : "/sys/fs/cgroup", o->version) : -ENOMEM;
    if (rc < 0)
        goto err;
    for (int h = 0; h < H_MAX; h++) {
        if (!r->mnt[h])
            continue;
        r->dir[h] = path_join(r->mnt[h], r->parent);
        if (!r->dir[h]) {
            rc = -ENOMEM;
            goto err;
        }
        rc = mkdir_below(r->mnt[h], r->parent, r->fake,
                         r->version == KVC_CG_V2 ? fake_v2_files : fake_v1_files);
        if (rc < 0)
            goto err;
    }
    if (r->version == KVC_CG_V2) {
        rc = v2_enable(r);
        if (rc < 0)
            goto err;
    }
    snprintf(r->desc, sizeof(r->desc), "v%d cpu=%s%s%s%s%s", (int)r->version, r->dir[H_CPU],
             r->dir[H_ACCT] ? " cpuacct=" : "", r->dir[H_ACCT] ? r->dir[H_ACCT] : "",
             r->dir[H_MEM] ? " memory=" : "", r->dir[H_MEM] ? r->dir[H_MEM] : "");
    kvc_info("cgroups: %s", r->desc);
    *out = r;
    return 0;
err:
    kvc_cg_root_close(r, false);
    return rc;
}

/* A fake cgroup is a real directory with files in it: empty it first. */
static void fake_empty(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_type == DT_DIR)
            continue;
        char *p = path_join(dir, de->d_name);
        if (p)
            unlink(p);
        free(p);
    }
    if (d)
        closedir(d);
}

void kvc_cg_root_close(struct kvc_cg_root *r, bool rmdir_parent)
{
    if (!r)
        return;
    for (int h = 0; h < H_MAX; h++) {
        if (rmdir_parent && r->dir[h] && r->fake)
            fake_empty(r->dir[h]);
        /* EBUSY: VMs still run in it (they keep running across vmkd restarts). */
        if (rmdir_parent && r->dir[h] && rmdir(r->dir[h]) < 0 && errno != ENOENT && errno != EBUSY)
            kvc_warn("rmdir %s: %s", r->dir[h], strerror(errno));
        free(r->dir[h]);
        free(r->mnt[h]);
    }
    free(r->parent);
    free(r);
}

enum kvc_cg_version kvc_cg_root_version(const struct kvc_cg_root *r)
{
    return r->version;
}

bool kvc_cg_root_has_memory(const struct kvc_cg_root *r)
{
    return r->version == KVC_CG_V2 || r->dir[H_MEM] != NULL;
}

const char *kvc_cg_root_describe(const struct kvc_cg_root *r)
{
    return r->desc;
}

int kvc_cg_vm_create(struct kvc_cg_root *r, const char *name, struct kvc_cg_vm **out)
{
    *out = NULL;
    if (!valid_rel(name, false) || name[0] == '.')
        return -EINVAL;
    struct kvc_cg_vm *vm = calloc(1, sizeof(*vm));
    if (!vm)
        return -ENOMEM;
    vm->root = r;
    int rc = 0;
    for (int h = 0; h < H_MAX; h++) {
        if (!r->dir[h])
            continue;
        vm->dir[h] = path_join(r->dir[h], name);
        if (!vm->dir[h]) {
            rc = -ENOMEM;
            goto err;
        }
        rc = mkdir_below(r->dir[h], name, r->fake,
                         r->version == KVC_CG_V2 ? fake_v2_files : fake_v1_files);
        if (rc < 0)
            goto err;
    }
    *out = vm;
    return 0;
err:
    kvc_cg_vm_destroy(vm);
    return rc;
}

int kvc_cg_group_create(struct kvc_cg_root *r, const char *rel, bool delegate,
                        struct kvc_cg_vm **out)
{
    *out = NULL;
    if (!valid_rel(rel, true) || rel[0] == '.' || strstr(rel, "/.") || strstr(rel, "//"))
        return -EINVAL;
    struct kvc_cg_vm *g = calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->root = r;
    int rc = 0;
    for (int h = 0; h < H_MAX; h++) {
        if (!r->dir[h])
            continue;
        g->dir[h] = path_join(r->dir[h], rel);
        if (!g->dir[h]) {
            rc = -ENOMEM;
            goto err;
        }
        rc = mkdir_below(r->dir[h], rel, r->fake,
                         r->version == KVC_CG_V2 ? fake_v2_files : fake_v1_files);
        if (rc < 0)
            goto err;
    }
    /* v2: a pool's children (pools, VMs) get the controllers too. */
    if (delegate && r->version == KVC_CG_V2) {
        rc = write_file(r, g->dir[H_CPU], "cgroup.subtree_control", "+cpu\n");
        if (rc == 0)        /* memory is optional (v2 without it delegated) */
            write_file(r, g->dir[H_CPU], "cgroup.subtree_control", "+memory\n");
        if (rc < 0)
            goto err;
    }
    *out = g;
    return 0;
err:
    kvc_cg_vm_free(g);
    return rc;
}

void kvc_cg_vm_free(struct kvc_cg_vm *vm)
{
    if (!vm)
        return;
    for (int h = 0; h < H_MAX; h++)
        free(vm->dir[h]);
    free(vm);
}

int kvc_cg_vm_destroy(struct kvc_cg_vm *vm)
{
    if (!vm)
        return 0;
    int rc = 0;
    for (int h = 0; h < H_MAX; h++) {
        if (!vm->dir[h])
            continue;
        if (vm->root->fake)
            fake_empty(vm->dir[h]);
        if (rmdir(vm->dir[h]) < 0 && errno != ENOENT) {
            rc = -errno;
            kvc_warn("rmdir %s: %s", vm->dir[h], strerror(errno));
        }
    }
    kvc_cg_vm_free(vm);
    return rc;
}

int kvc_cg_vm_attach(struct kvc_cg_vm *vm, pid_t pid)
{
    char v[32];
    snprintf(v, sizeof(v), "%d\n", (int)pid);
    for (int h = 0; h < H_MAX; h++) {
        if (!vm->dir[h])
            continue;
        int rc = write_file(vm->root, vm->dir[h], "cgroup.procs", v);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int kvc_cg_vm_procs_fds(struct kvc_cg_vm *vm, int *fds, int max)
{
    int n = 0;
    for (int h = 0; h < H_MAX; h++) {
        if (!vm->dir[h])
            continue;
        if (n == max)
            goto err_inval;
        char *p = path_join(vm->dir[h], "cgroup.procs");
        if (!p)
            goto err_nomem;
        fds[n] = open(p, O_WRONLY | O_CLOEXEC | (vm->root->fake ? O_APPEND : 0));
        int e = errno;
        free(p);
        if (fds[n] < 0) {
            errno = e;
            goto err;
        }
        n++;
    }
    return n;
err_inval:
    errno = EINVAL;
    goto err;
err_nomem:
    errno = ENOMEM;
err:
    {
        int e = -errno;
        while (n > 0)
            close(fds[--n]);
        return e;
    }
}

int kvc_cg_vm_set_weight(struct kvc_cg_vm *vm, uint64_t weight)
{
    char v[32];
    snprintf(v, sizeof(v), "%" PRIu64 "\n", weight);
    return write_file(vm->root, vm->dir[H_CPU],
                      vm->root->version == KVC_CG_V2 ? "cpu.weight" : "cpu.shares", v);
}

int kvc_cg_vm_set_quota(struct kvc_cg_vm *vm, int64_t quota_us, uint64_t period_us)
{
    char v[64];
    if (period_us < 1000 || period_us > 1000000)
        return -EINVAL;
    if (quota_us >= 0 && quota_us < 1000)
        quota_us = 1000;        /* the kernel's minimum */
    if (vm->root->version == KVC_CG_V2) {
        if (quota_us < 0)
            snprintf(v, sizeof(v), "max %" PRIu64 "\n", period_us);
        else
            snprintf(v, sizeof(v), "%" PRId64 " %" PRIu64 "\n", quota_us, period_us);
        return write_file(vm->root, vm->dir[H_CPU], "cpu.max", v);
    }
    /* v1: the quota must go away before the period may shrink below it. */
    int rc = write_file(vm->root, vm->dir[H_CPU], "cpu.cfs_quota_us", "-1\n");
    if (rc < 0)
        return rc;
    snprintf(v, sizeof(v), "%" PRIu64 "\n", period_us);
    rc = write_file(vm->root, vm->dir[H_CPU], "cpu.cfs_period_us", v);
    if (rc < 0 || quota_us < 0)
        return rc;
    snprintf(v, sizeof(v), "%" PRId64 "\n", quota_us);
    return write_file(vm->root, vm->dir[H_CPU], "cpu.cfs_quota_us", v);
}

int kvc_cg_vm_set_mem_limit(struct kvc_cg_vm *vm, int64_t bytes)
{
    char v[32];
    if (vm->root->version == KVC_CG_V2) {
        if (bytes < 0)
            snprintf(v, sizeof(v), "max\n");
        else
            snprintf(v, sizeof(v), "%" PRId64 "\n", bytes);
        return write_file(vm->root, vm->dir[H_CPU], "memory.max", v);
    }
    if (!vm->dir[H_MEM])
        return -ENOTSUP;
    snprintf(v, sizeof(v), "%" PRId64 "\n", bytes < 0 ? (int64_t)-1 : bytes);
    return write_file(vm->root, vm->dir[H_MEM], "memory.limit_in_bytes", v);
}

int kvc_cg_vm_set_mem_reservation(struct kvc_cg_vm *vm, uint64_t bytes)
{
    char v[32];
    snprintf(v, sizeof(v), "%" PRIu64 "\n", bytes);
    if (vm->root->version == KVC_CG_V2)
        return write_file(vm->root, vm->dir[H_CPU], "memory.min", v);
    if (!vm->dir[H_MEM])
        return -ENOTSUP;
    return write_file(vm->root, vm->dir[H_MEM], "memory.soft_limit_in_bytes", v);
}

int kvc_cg_vm_usage(struct kvc_cg_vm *vm, struct kvc_cg_usage *u)
{
    memset(u, 0, sizeof(*u));
    int rc;
    if (vm->root->version == KVC_CG_V2) {
        uint64_t usec = 0;
        rc = read_keyed(vm->dir[H_CPU], "cpu.stat", "usage_usec", &usec);
        if (rc < 0)
            return rc;
        u->cpu_ns = usec * 1000;
        read_keyed(vm->dir[H_CPU], "cpu.stat", "nr_periods", &u->nr_periods);
        read_keyed(vm->dir[H_CPU], "cpu.stat", "nr_throttled", &u->nr_throttled);
        if (read_keyed(vm->dir[H_CPU], "cpu.stat", "throttled_usec", &usec) == 0)
            u->throttled_ns = usec * 1000;
        read_u64_file(vm->dir[H_CPU], "memory.current", &u->mem_bytes);
        return 0;
    }
    const char *acct = vm->dir[H_ACCT] ? vm->dir[H_ACCT] : vm->dir[H_CPU];
    rc = read_u64_file(acct, "cpuacct.usage", &u->cpu_ns);
    if (rc < 0)
        return rc;
    read_keyed(vm->dir[H_CPU], "cpu.stat", "nr_periods", &u->nr_periods);
    read_keyed(vm->dir[H_CPU], "cpu.stat", "nr_throttled", &u->nr_throttled);
    read_keyed(vm->dir[H_CPU], "cpu.stat", "throttled_time", &u->throttled_ns);
    if (vm->dir[H_MEM])
        read_u64_file(vm->dir[H_MEM], "memory.usage_in_bytes", &u->mem_bytes);
    return 0;
}

int kvc_cg_vm_nprocs(struct kvc_cg_vm *vm)
{
    char buf[4096];
    char *p = path_join(vm->dir[H_CPU], "cgroup.procs");
    if (!p)
        return -ENOMEM;
    int rc = read_file(p, buf, sizeof(buf));
    free(p);
    if (rc < 0)
        return rc;
    int n = 0;
    for (char *s = buf; *s; s++)
        if (*s == '\n')
            n++;
    return n;
}

const char *kvc_cg_vm_path(const struct kvc_cg_vm *vm)
{
    return vm->dir[H_CPU];
}
