/* VM folders on datastores, their config files, and the host's registry.
 *
 * Layout of one VM (docs/hosts.md):
 *     <datastore>/<name>/<name>.vmx     config (lib/config.h format, [vm])
 *     <datastore>/<name>/<name>.img     disk (sparse raw file), if any
 *     <datastore>/<name>/vmware.log     the VM's log
 *     <datastore>/<name>/<name>.lck     lease (written by whoever runs it)
 * The registry (which VMs this host holds) is STATE_DIR/vms, one config path
 * per line: datastores may be shared, so a folder on one does not mean the
 * VM belongs to this host. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "lib/configfile.h"
#include "lib/lease.h"
#include "log.h"
#include "hostd/backend.h"
#include "hostd/hostd.h"

KVC_LOG_MODULE(vmstore);

static const struct kvc_cfg_key vm_keys[] = {
    KVC_CFG_KEY_STRING("uuid", NULL, "instance uuid (chosen by vpxd)"),
    KVC_CFG_KEY_STRING("name", NULL, "display name, also the folder name"),
    KVC_CFG_KEY_STRING("guest_os", "other", "guest OS identifier"),
    KVC_CFG_KEY_INT("cpu_count", "1", 1, 128, "virtual CPUs"),
    KVC_CFG_KEY_INT("memory_mib", "256", 4, 1048576, "memory in MiB"),
    KVC_CFG_KEY_SIZE("disk", "0", 0, (int64_t)1 << 50, "disk size (0: none)"),
    KVC_CFG_KEY_STRING("network", NULL, "port group of the vNIC (none: no vNIC)"),
    KVC_CFG_KEY_STRING("workload", "idle", "guest workload / sim profile"),
    KVC_CFG_KEY_INT("generation", "1", 0, INT64_MAX, "change counter"),
    KVC_CFG_KEY_END,
};
static const struct kvc_cfg_section_def vm_sections[] = {
    { .name = "vm", .keys = vm_keys },
    { NULL },
};
static const struct kvc_cfg_schema vm_schema = { "vm", vm_sections };

int
hostd_state_write(const char *dir, const char *file, const char *value)
{
    char path[PATH_MAX + 64], tmp[PATH_MAX + 64];
    FILE *f;
    int rc = 0;

    snprintf(path, sizeof path, "%s/%s", dir, file);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, file);
    if (!(f = fopen(tmp, "w")))
        return -errno;
    if (fputs(value, f) < 0 || fflush(f) || fsync(fileno(f)))
        rc = -errno ? -errno : -EIO;
    if (fclose(f) && !rc)
        rc = -errno;
    if (!rc && rename(tmp, path) < 0)
        rc = -errno;
    if (rc) {
        unlink(tmp);
        kvc_err("write %s: %s", path, strerror(-rc));
    }
    return rc;
}

int
hostd_state_read(const char *dir, const char *file, char *buf, size_t len)
{
    char path[PATH_MAX + 64];
    FILE *f;
    size_t n;

    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (!(f = fopen(path, "r")))
        return -errno;
    n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = 0;
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
        buf[--n] = 0;
    return 0;
}

struct hostd_datastore *
vmstore_datastore(struct hostd_host *h, const char *name)
{
    for (size_t i = 0; i < h->n_ds; i++)
        if (!strcmp(h->ds[i].name, name))
            return &h->ds[i];
    return NULL;
}

void
vmstore_vm_free(struct hostd_vm *vm)
{
    if (!vm)
        return;
    free(vm->name);
    free(vm->datastore);
    free(vm->guest_os);
    free(vm->network);
    free(vm->workload);
    free(vm->lease_watch);
    free(vm);
}

/* A VM name becomes a folder name: no '/', no leading '.', printable. */
static bool
name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 80 || s[0] == '.' || s[0] == ' ')
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == '/' || *s == '\\' || *s == 0x7f)
            return false;
    return true;
}

static int
vm_paths(struct hostd_host *h, struct hostd_vm *vm,
         const struct hostd_datastore *ds)
{
    if (snprintf(vm->dir, sizeof vm->dir, "%s/%s", ds->path, vm->name) >= (int)sizeof vm->dir ||
        snprintf(vm->config, sizeof vm->config, "%s/%s.vmx", vm->dir, vm->name) >= (int)sizeof vm->config)
        return -ENAMETOOLONG;
    return 0;
}

int
vmstore_write_config(struct hostd_host *h, struct hostd_vm *vm)
{
    struct kvc_config *c = NULL;
    char *errs = NULL, tmp[PATH_MAX + 8], v[64];
    FILE *f = NULL;
    int rc;

    if ((rc = kvc_config_new(&vm_schema, &c, &errs)))
        goto out;
#define SET(K, V) do { if ((rc = kvc_config_set(c, "vm", NULL, K, V, &errs))) goto out; } while (0)
    SET("uuid", vm->uuid);
    SET("name", vm->name);
    SET("guest_os", vm->guest_os);
    snprintf(v, sizeof v, "%u", vm->cpu_count);
    SET("cpu_count", v);
    snprintf(v, sizeof v, "%llu", (unsigned long long)vm->memory_mib);
    SET("memory_mib", v);
    snprintf(v, sizeof v, "%llu", (unsigned long long)vm->disk_bytes);
    SET("disk", v);
    if (vm->network[0])
        SET("network", vm->network);
    SET("workload", vm->workload);
    snprintf(v, sizeof v, "%llu", (unsigned long long)vm->generation);
    SET("generation", v);
#undef SET
    snprintf(tmp, sizeof tmp, "%s.tmp", vm->config);
    if (!(f = fopen(tmp, "w"))) {
        rc = -errno;
        goto out;
    }
    fprintf(f, "# kvcenter VM configuration, written by hostd\n");
    kvc_config_dump(c, f);
    if (fflush(f) || fsync(fileno(f)))
        rc = -errno;
    if (fclose(f) && !rc)
        rc = -errno;
    f = NULL;
    if (!rc && rename(tmp, vm->config) < 0)
        rc = -errno;
    if (rc)
        unlink(tmp);
out:
    if (rc)
        kvc_err("write %s: %s%s%s", vm->config, strerror(-rc),
                errs ? ": " : "", errs ? errs : "");
    free(errs);
    kvc_config_free(c);
    return rc;
}

static int
load_config(struct hostd_host *h, const char *path, struct hostd_vm **out)
{
    struct kvc_config *c = NULL;
    const struct kvc_cfg_section *s;
    struct hostd_vm *vm = NULL;
    char *errs = NULL;
    const char *p;
    int rc;

    if ((rc = kvc_config_load(&vm_schema, path, &c, &errs))) {
        kvc_err("VM config %s: %s", path, errs ? errs : strerror(-rc));
        goto out;
    }
    s = kvc_config_section(c, "vm");
    rc = -EINVAL;
    if (!(vm = calloc(1, sizeof *vm)))
        goto nomem;
    p = kvc_cfg_string(s, "uuid");
    if (!p || !hostd_uuid_valid(p) || !kvc_cfg_string(s, "name") ||
        !name_ok(kvc_cfg_string(s, "name"))) {
        kvc_err("VM config %s: missing or bad uuid/name", path);
        goto out;
    }
    strcpy(vm->uuid, p);
    vm->name = strdup(kvc_cfg_string(s, "name"));
    vm->guest_os = strdup(kvc_cfg_string(s, "guest_os"));
    vm->network = strdup(kvc_cfg_string(s, "network") ? kvc_cfg_string(s, "network") : "");
    vm->workload = strdup(kvc_cfg_string(s, "workload"));
    if (!vm->name || !vm->guest_os || !vm->network || !vm->workload)
        goto nomem;
    vm->cpu_count = (uint32_t)kvc_cfg_int(s, "cpu_count");
    vm->memory_mib = (uint64_t)kvc_cfg_int(s, "memory_mib");
    vm->disk_bytes = kvc_cfg_size(s, "disk");
    vm->generation = (uint64_t)kvc_cfg_int(s, "generation");
    if (strlen(path) >= sizeof vm->config) {
        rc = -ENAMETOOLONG;
        goto out;
    }
    strcpy(vm->config, path);
    strcpy(vm->dir, path);
    *strrchr(vm->dir, '/') = 0;
    /* The datastore is the one whose path holds the folder. */
    for (size_t i = 0; i < h->n_ds; i++) {
        size_t n = strlen(h->ds[i].path);
        if (!strncmp(vm->dir, h->ds[i].path, n) && vm->dir[n] == '/' &&
            !strchr(vm->dir + n + 1, '/')) {
            vm->datastore = strdup(h->ds[i].name);
            break;
        }
    }
    if (!vm->datastore) {
        kvc_err("VM config %s is on no datastore of this host", path);
        goto out;
    }
    *out = vm;
    vm = NULL;
    rc = 0;
    goto out;
nomem:
    rc = -ENOMEM;
out:
    vmstore_vm_free(vm);
    free(errs);
    kvc_config_free(c);
    return rc;
}

int
vmstore_load_vm(struct hostd_host *h, const char *path, struct hostd_vm **out)
{
    return load_config(h, path, out);
}

int
vmstore_load_config(struct hostd_host *h, const char *path, struct hostd_vm **out)
{
    return load_config(h, path, out);
}

int
vmstore_load(struct hostd_host *h)
{
    char path[PATH_MAX + 8], line[PATH_MAX + 2];
    struct hostd_vm **tail = &h->vms;
    FILE *f;

    snprintf(path, sizeof path, "%s/vms", h->state_dir);
    if (!(f = fopen(path, "r")))
        return errno == ENOENT ? 0 : -errno;
    while (fgets(line, sizeof line, f)) {
        struct hostd_vm *vm;
        line[strcspn(line, "\n")] = 0;
        if (!line[0])
            continue;
        /* A VM whose folder vanished is dropped from the registry (and the
         * full inventory tells vpxd); one whose config is corrupt too, with
         * an error line: hostd must come up with the rest. */
        if (load_config(h, line, &vm))
            continue;
        if (hostd_vm_find(h, vm->uuid)) {
            kvc_err("registry lists uuid %s twice; keeping the first", vm->uuid);
            vmstore_vm_free(vm);
            continue;
        }
        *tail = vm;
        tail = &vm->next;
    }
    fclose(f);
    return 0;
}

int
vmstore_save_registry(struct hostd_host *h)
{
    size_t cap = 256, len = 0;
    char *buf = malloc(cap);
    int rc;

    if (!buf)
        return -ENOMEM;
    buf[0] = 0;
    for (struct hostd_vm *vm = h->vms; vm; vm = vm->next) {
        size_t n = strlen(vm->config) + 1;
        if (len + n + 1 > cap) {
            char *nb;
            while (len + n + 1 > cap)
                cap *= 2;
            if (!(nb = realloc(buf, cap))) {
                free(buf);
                return -ENOMEM;
            }
            buf = nb;
        }
        memcpy(buf + len, vm->config, n - 1);
        buf[len + n - 1] = '\n';
        len += n;
        buf[len] = 0;
    }
    rc = hostd_state_write(h->state_dir, "vms", buf);
    free(buf);
    return rc;
}

int
vmstore_create(struct hostd_host *h, const Kvc__Host__VmSpec *spec,
               struct hostd_vm **out, char *err, size_t errlen)
{
    struct hostd_datastore *ds;
    struct hostd_vm *vm = NULL;
    char path[PATH_MAX + 16];
    int rc = -EINVAL, fd;

    if (!spec->uuid || !hostd_uuid_valid(spec->uuid)) {
        snprintf(err, errlen, "uuid '%s' is not a uuid", spec->uuid ? spec->uuid : "");
        return -EINVAL;
    }
    if (!spec->name || !name_ok(spec->name)) {
        snprintf(err, errlen, "VM name '%s' cannot be a folder name", spec->name ? spec->name : "");
        return -EINVAL;
    }
    if (!spec->datastore || !(ds = vmstore_datastore(h, spec->datastore))) {
        snprintf(err, errlen, "no datastore '%s' on this host", spec->datastore ? spec->datastore : "");
        return -ENOENT;
    }
    if (spec->cpu_count > 128 || spec->memory_mib > 1048576 ||
        (spec->memory_mib && spec->memory_mib < 4) ||
        spec->disk_bytes > ((uint64_t)1 << 50)) {
        snprintf(err, errlen, "cpu_count (1..128), memory_mib (4..1048576) or disk size out of range");
        return -EINVAL;
    }
    if (spec->network && spec->network[0]) {
        bool found = false;
        for (size_t i = 0; i < h->n_nets; i++)
            found |= !strcmp(h->nets[i].name, spec->network);
        if (!found) {
            snprintf(err, errlen, "no network '%s' on this host", spec->network);
            return -ENOENT;
        }
    }
    if (!(vm = calloc(1, sizeof *vm)))
        return -ENOMEM;
    strcpy(vm->uuid, spec->uuid);
    vm->name = strdup(spec->name);
    vm->datastore = strdup(ds->name);
    vm->guest_os = strdup(spec->guest_os && spec->guest_os[0] ? spec->guest_os : "other");
    vm->network = strdup(spec->network ? spec->network : "");
    vm->workload = strdup(spec->workload && spec->workload[0] ? spec->workload : "idle");
    if (!vm->name || !vm->datastore || !vm->guest_os || !vm->network || !vm->workload) {
        rc = -ENOMEM;
        goto fail;
    }
    vm->cpu_count = spec->cpu_count ? spec->cpu_count : 1;
    vm->memory_mib = spec->memory_mib ? spec->memory_mib : 256;
    vm->disk_bytes = spec->disk_bytes;
    vm->generation = 1;
    if ((rc = vm_paths(h, vm, ds))) {
        snprintf(err, errlen, "VM path too long");
        goto fail;
    }
    if (mkdir(vm->dir, 0755) < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot create folder %s: %s%s", vm->dir, strerror(errno),
                 errno == EEXIST ? " (a VM of that name exists on the datastore)" : "");
        goto fail;
    }
    if (vm->disk_bytes) {
        snprintf(path, sizeof path, "%s/%s.img", vm->dir, vm->name);
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 || ftruncate(fd, (off_t)vm->disk_bytes) < 0) {
            rc = -errno;
            snprintf(err, errlen, "cannot create disk %s: %s", path, strerror(errno));
            if (fd >= 0)
                close(fd);
            goto fail_dir;
        }
        close(fd);
    }
    if ((rc = vmstore_write_config(h, vm))) {
        snprintf(err, errlen, "cannot write %s: %s", vm->config, strerror(-rc));
        goto fail_dir;
    }
    *out = vm;
    return 0;
fail_dir:
    vmstore_delete(h, vm);
fail:
    vmstore_vm_free(vm);
    return rc;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    if (remove(path) < 0 && errno != ENOENT)
        kvc_warn("remove %s: %s", path, strerror(errno));
    return 0;
}

int
vmstore_delete(struct hostd_host *h, struct hostd_vm *vm)
{
    struct stat st;

    if (!vm->dir[0] || lstat(vm->dir, &st) < 0)
        return errno == ENOENT ? 0 : -errno;
    if (nftw(vm->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
        return -errno;
    return access(vm->dir, F_OK) == 0 ? -ENOTEMPTY : 0;
}

/* ---- the VM's lease ----------------------------------------------------- */

void
vmstore_lease_opts(struct hostd_host *h, struct hostd_vm *vm, struct kvc_lease_opts *o,
                   char *path, size_t len)
{
    snprintf(path, len, "%s/%s.lck", vm->dir, vm->name);
    memset(o, 0, sizeof *o);
    o->path = path;
    o->owner = h->uuid;
    o->owner_name = h->name;
    o->vm = vm->name;
    o->duration_ms = h->d->opt.lease_ms;
    if (!vm->lease_watch)
        vm->lease_watch = calloc(1, sizeof *vm->lease_watch);
    o->watch = vm->lease_watch;         /* NULL (no memory): wall clock only */
}

int
vmstore_lease_check(struct hostd_host *h, struct hostd_vm *vm, char *why, size_t len)
{
    struct kvc_lease_opts o;
    struct kvc_lease_record r;
    char path[PATH_MAX + 96], err[PATH_MAX + 256];
    int64_t wait = 0;
    int rc;

    vmstore_lease_opts(h, vm, &o, path, sizeof path);
    rc = kvc_lease_read(path, &r, err, sizeof err);
    if (rc == -EBADMSG) {
        snprintf(why, len, "%s (if no host runs this VM, remove the file)", err);
        return rc;
    }
    if (rc && rc != -ENOENT)
        return 0;               /* unreadable now: the acquire decides */
    if (kvc_lease_judge(rc ? NULL : &r, h->uuid, o.watch, kvc_lease_wall_ms(),
                        kvc_lease_mono_ms(), &wait) != KVC_LEASE_LIVE)
        return 0;
    snprintf(why, len, "VM %s is running on host %s (%s): its lease is live "
             "(renewed %lld ms ago, duration %u ms; it expires if not renewed within %lld ms)",
             vm->name, r.owner_name[0] ? r.owner_name : r.owner, r.owner,
             (long long)(kvc_lease_wall_ms() - r.time_ms), r.duration_ms, (long long)wait);
    return -EBUSY;
}

int
vmstore_lease_acquire(struct hostd_host *h, struct hostd_vm *vm, bool force,
                      struct kvc_lease **out, char *why, size_t len)
{
    struct kvc_lease_opts o;
    char path[PATH_MAX + 96];

    vmstore_lease_opts(h, vm, &o, path, sizeof path);
    o.force = force;
    return kvc_lease_acquire(&o, out, NULL, why, len);
}

void
vmstore_lease_release_owned(struct hostd_host *h, struct hostd_vm *vm)
{
    char path[PATH_MAX + 96], err[PATH_MAX + 256];

    snprintf(path, sizeof path, "%s/%s.lck", vm->dir, vm->name);
    if (kvc_lease_release_owned(path, h->uuid, err, sizeof err))
        kvc_warn("%s: VM %s: %s", h->name, vm->name, err);
}

int
vmstore_write_ds_heartbeat(struct hostd_host *h, int64_t now_ms)
{
    char dir[PATH_MAX], path[PATH_MAX + 64], tmp[PATH_MAX + 64], buf[256];
    int rc = 0;

    for (size_t i = 0; i < h->n_ds; i++) {
        int fd, n;
        if (!h->ds[i].shared)
            continue;
        snprintf(dir, sizeof dir, "%s/.kvc-hb", h->ds[i].path);
        if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
            rc = -errno;
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", dir, h->uuid);
        snprintf(tmp, sizeof tmp, "%s/.%s.tmp", dir, h->uuid);
        n = snprintf(buf, sizeof buf, "uuid=%s name=%s time_ms=%lld seq=%llu\n",
                     h->uuid, h->name, (long long)now_ms,
                     (unsigned long long)h->hb_seq);
        /* Readers see the old or the new content, never half a line. */
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, buf, (size_t)n) != n) {
            rc = -errno;
            if (fd >= 0)
                close(fd);
            continue;
        }
        close(fd);
        if (rename(tmp, path) < 0)
            rc = -errno;
    }
    return rc;
}
