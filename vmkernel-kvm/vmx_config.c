/* The VM's config file, in the project's config format (lib/configfile.h).
 * Relative paths are taken from the config file's folder.  Cross-key rules
 * (one guest kind, the working set fitting in RAM) are checked here. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/configfile.h"
#include "vmkernel-kvm/vmx.h"

static const char *const workload_names[KVC_WL_COUNT_] = {
    "idle", "cpu", "dirty", "counter", "hang", "crash",
};

const char *vmx_workload_name(enum kvc_workload w)
{
    return (unsigned)w < KVC_WL_COUNT_ ? workload_names[w] : "unknown";
}

static const struct kvc_cfg_key vm_keys[] = {
    { .name = "name", .type = KVC_CFG_STRING, .required = true, .help = "display name" },
    KVC_CFG_KEY_STRING("uuid", NULL, "VM uuid"),
    KVC_CFG_KEY_INT("memory_mb", "64", 2, 3072, "guest RAM in MiB (even)"),
    KVC_CFG_KEY_INT("vcpus", "1", 1, VMX_MAX_VCPUS, "virtual CPUs"),
    KVC_CFG_KEY_STRING("guest.image", NULL, "test guest ELF (vmkernel-kvm/guest)"),
    KVC_CFG_KEY_STRING("guest.kernel", NULL, "Linux bzImage, instead of guest.image"),
    KVC_CFG_KEY_STRING("guest.initrd", NULL, "initrd for guest.kernel"),
    KVC_CFG_KEY_STRING("guest.cmdline", NULL, "kernel command line for guest.kernel"),
    KVC_CFG_KEY_ENUM("guest.workload", "idle", "test guest workload",
                     "idle", "cpu", "dirty", "counter", "hang", "crash"),
    KVC_CFG_KEY_INT("guest.duty_percent", "50", 0, 100, "cpu workload: busy percent"),
    KVC_CFG_KEY_INT("guest.dirty_mb_per_s", "16", 0, 100000, "dirty workload: MiB/s dirtied"),
    KVC_CFG_KEY_INT("guest.working_set_mb", "16", 0, 3000, "dirty workload: working set"),
    KVC_CFG_KEY_STRING("serial.log", NULL, "serial console log file"),
    KVC_CFG_KEY_INT("tools.heartbeat_timeout_ms", "3000", 100, 3600000,
                    "heartbeat age after which the guest counts as hung"),
    KVC_CFG_KEY_BOOL("balloon.enabled", "true", "virtio-balloon device"),
    KVC_CFG_KEY_STRING("lease.path", NULL, "the VM's lease file (lib/lease.h); unset: no lease"),
    KVC_CFG_KEY_STRING("lease.owner", NULL, "lease owner id: the host uuid"),
    KVC_CFG_KEY_STRING("lease.owner_name", NULL, "host name, for messages"),
    KVC_CFG_KEY_INT("lease.duration_ms", "10000", 100, 600000,
                    "renewed every duration/5; lost after 3/5 without renewal"),
    KVC_CFG_KEY_BOOL("net.enabled", "false", "virtio-net adapter (backend: a vSwitch port from vmkd)"),
    KVC_CFG_KEY_STRING("net.mac", NULL, "the adapter's MAC, xx:xx:xx:xx:xx:xx (unicast)"),
    KVC_CFG_KEY_STRING("net.portgroup", NULL, "port group the adapter connects to (vmkd's power-on)"),
    KVC_CFG_KEY_INT("net.mtu", "1500", 68, 9000, "MTU the adapter reports"),
    KVC_CFG_KEY_ENUM("guest.net_mode", "none", "test guest network workload",
                     "none", "listen", "echo", "ping", "flood", "udping", "hostile"),
    KVC_CFG_KEY_STRING("guest.ip", NULL, "test guest IPv4 address"),
    KVC_CFG_KEY_STRING("guest.peer", NULL, "ping/flood: the peer's IPv4 address"),
    KVC_CFG_KEY_INT("guest.net_count", "0", 0, 1000000000, "ping/flood: packets to send (0: no end)"),
    KVC_CFG_KEY_INT("guest.net_size", "56", 0, 8972, "ping/flood: payload bytes"),
    KVC_CFG_KEY_BOOL("guest.net_forge", "false", "send with a source MAC not the adapter's"),
    KVC_CFG_KEY_INT("guest.net_vlan", "0", 0, 4094, "tag what the guest sends with this VLAN (trunk)"),
    KVC_CFG_KEY_STRING("disk.path", NULL, "virtio-blk disk: a raw (sparse) file; its size is the capacity"),
    KVC_CFG_KEY_BOOL("disk.readonly", "false", "the guest may only read the disk"),
    KVC_CFG_KEY_ENUM("guest.disk_test", "off", "test guest disk test (needs disk.path)",
                     "off", "write", "verify", "bench", "loop"),
    KVC_CFG_KEY_INT("guest.disk_seed", "1", 0, 2147483647, "disk test: pattern seed"),
    KVC_CFG_KEY_INT("guest.disk_mb", "4", 1, 1024, "disk test: MiB from sector 0"),
    KVC_CFG_KEY_END,
};

const char *const vmx_disk_test_names[] = { "off", "write", "verify", "bench", "loop", NULL };

const char *const vmx_net_mode_names[] = { "none", "listen", "echo", "ping", "flood", "udping",
                                            "hostile", NULL };

static int parse_mac(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    char tail;
    if (!s || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                     &tail) != 6 || strlen(s) != 17)
        return -EINVAL;
    for (int i = 0; i < 6; i++)
        mac[i] = (uint8_t)v[i];
    return 0;
}

static bool valid_ip(const char *s)
{
    unsigned a, b, c, d;
    char tail;
    return s && sscanf(s, "%3u.%3u.%3u.%3u%c", &a, &b, &c, &d, &tail) == 4
        && a < 256 && b < 256 && c < 256 && d < 256 && strlen(s) < 16;
}

/* net.* and guest.net_*: 0, or -EINVAL with MSG set. */
static int net_from_config(struct vmx_config *c, const struct kvc_cfg_section *s, char *msg,
                           size_t len)
{
    c->net = kvc_cfg_bool(s, "net.enabled");
    c->net_mtu = (unsigned)kvc_cfg_int(s, "net.mtu");
    c->guest_net_mode = (unsigned)kvc_cfg_enum_index(s, "guest.net_mode");
    c->guest_net_count = (unsigned)kvc_cfg_int(s, "guest.net_count");
    c->guest_net_size = (unsigned)kvc_cfg_int(s, "guest.net_size");
    c->guest_net_forge = kvc_cfg_bool(s, "guest.net_forge");
    c->guest_net_vlan = (unsigned)kvc_cfg_int(s, "guest.net_vlan");
    const char *mac = kvc_cfg_string(s, "net.mac");
    const char *pg = kvc_cfg_string(s, "net.portgroup");
    const char *ip = kvc_cfg_string(s, "guest.ip");
    const char *peer = kvc_cfg_string(s, "guest.peer");
    snprintf(c->net_portgroup, sizeof(c->net_portgroup), "%s", pg ? pg : "");
    snprintf(c->guest_ip, sizeof(c->guest_ip), "%s", ip && valid_ip(ip) ? ip : "");
    snprintf(c->guest_peer, sizeof(c->guest_peer), "%s", peer && valid_ip(peer) ? peer : "");
    if (!c->net) {
        if (c->guest_net_mode)
            snprintf(msg, len, "key 'guest.net_mode': needs 'net.enabled = true'");
        return c->guest_net_mode ? -EINVAL : 0;
    }
    if (!mac || parse_mac(mac, c->net_mac) < 0 || (c->net_mac[0] & 1)
        || !memcmp(c->net_mac, "\0\0\0\0\0\0", 6)) {
        snprintf(msg, len, "key 'net.mac': '%s' is not a unicast MAC (xx:xx:xx:xx:xx:xx)",
                 mac ? mac : "");
        return -EINVAL;
    }
    if (ip && *ip && !valid_ip(ip)) {
        snprintf(msg, len, "key 'guest.ip': '%s' is not an IPv4 address", ip);
        return -EINVAL;
    }
    if (peer && *peer && !valid_ip(peer)) {
        snprintf(msg, len, "key 'guest.peer': '%s' is not an IPv4 address", peer);
        return -EINVAL;
    }
    if (c->guest_net_mode && !c->guest_ip[0]) {
        snprintf(msg, len, "key 'guest.net_mode': needs 'guest.ip'");
        return -EINVAL;
    }
    if (c->guest_net_mode >= 3 && c->guest_net_mode <= 5 && !c->guest_peer[0]) {
        snprintf(msg, len, "key 'guest.net_mode': %s needs 'guest.peer'",
                 vmx_net_mode_names[c->guest_net_mode]);
        return -EINVAL;
    }
    if (c->guest_net_size + 28 > c->net_mtu) {
        snprintf(msg, len, "key 'guest.net_size': %u bytes do not fit in MTU %u",
                 c->guest_net_size, c->net_mtu);
        return -EINVAL;
    }
    return 0;
}

static const struct kvc_cfg_section_def vm_sections[] = {
    { .name = "", .keys = vm_keys },
    { NULL },
};

const struct kvc_cfg_schema vmx_config_schema = { .name = "vm", .sections = vm_sections };

static int copy_str(char *dst, size_t cap, const char *v, const char *key, char *err, size_t errlen,
                    const char *file)
{
    if (!v)
        v = "";
    if (strlen(v) >= cap) {
        snprintf(err, errlen, "%s: key '%s': value too long (max %zu)", file, key, cap - 1);
        return -EINVAL;
    }
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

static int copy_path(const struct vmx_config *c, char *dst, size_t cap, const char *v,
                     const char *key, char *err, size_t errlen)
{
    char buf[PATH_MAX * 2];
    if (!v || !*v) {
        dst[0] = 0;
        return 0;
    }
    if (v[0] != '/') {
        snprintf(buf, sizeof(buf), "%s/%s", c->dir, v);
        v = buf;
    }
    return copy_str(dst, cap, v, key, err, errlen, c->path);
}

static int from_config(struct vmx_config *c, const struct kvc_config *kc, char *err, size_t errlen)
{
    const struct kvc_cfg_section *s = kvc_config_section(kc, "");
    int rc = 0;
    rc |= copy_str(c->name, sizeof(c->name), kvc_cfg_string(s, "name"), "name", err, errlen, c->path);
    rc |= copy_str(c->uuid, sizeof(c->uuid), kvc_cfg_string(s, "uuid"), "uuid", err, errlen, c->path);
    c->memory_mb = (uint64_t)kvc_cfg_int(s, "memory_mb");
    c->vcpus = (unsigned)kvc_cfg_int(s, "vcpus");
    rc |= copy_path(c, c->image, sizeof(c->image), kvc_cfg_string(s, "guest.image"), "guest.image", err, errlen);
    rc |= copy_path(c, c->kernel, sizeof(c->kernel), kvc_cfg_string(s, "guest.kernel"), "guest.kernel", err, errlen);
    rc |= copy_path(c, c->initrd, sizeof(c->initrd), kvc_cfg_string(s, "guest.initrd"), "guest.initrd", err, errlen);
    rc |= copy_str(c->cmdline, sizeof(c->cmdline), kvc_cfg_string(s, "guest.cmdline"), "guest.cmdline",
                   err, errlen, c->path);
    c->workload = (enum kvc_workload)kvc_cfg_enum_index(s, "guest.workload");
    c->duty_percent = (unsigned)kvc_cfg_int(s, "guest.duty_percent");
    c->dirty_mb_per_s = (unsigned)kvc_cfg_int(s, "guest.dirty_mb_per_s");
    c->working_set_mb = (unsigned)kvc_cfg_int(s, "guest.working_set_mb");
    rc |= copy_path(c, c->serial_log, sizeof(c->serial_log), kvc_cfg_string(s, "serial.log"), "serial.log", err, errlen);
    c->heartbeat_timeout_ms = (unsigned)kvc_cfg_int(s, "tools.heartbeat_timeout_ms");
    c->balloon = kvc_cfg_bool(s, "balloon.enabled");
    rc |= copy_path(c, c->lease_path, sizeof(c->lease_path), kvc_cfg_string(s, "lease.path"),
                    "lease.path", err, errlen);
    rc |= copy_str(c->lease_owner, sizeof(c->lease_owner), kvc_cfg_string(s, "lease.owner"),
                   "lease.owner", err, errlen, c->path);
    rc |= copy_str(c->lease_owner_name, sizeof(c->lease_owner_name),
                   kvc_cfg_string(s, "lease.owner_name"), "lease.owner_name", err, errlen, c->path);
    c->lease_duration_ms = (unsigned)kvc_cfg_int(s, "lease.duration_ms");
    if (!rc && c->lease_path[0] && !c->lease_owner[0]) {
        snprintf(err, errlen, "%s: key 'lease.path' needs 'lease.owner' (the host uuid)", c->path);
        return -EINVAL;
    }
    if (rc)
        return -EINVAL;

    const char *msg = NULL;
    char buf[256];
    if (!c->image[0] && !c->kernel[0])
        msg = "one of 'guest.image' or 'guest.kernel' is required";
    else if (c->image[0] && c->kernel[0])
        msg = "'guest.image' and 'guest.kernel' exclude each other";
    else if (c->memory_mb % 2)
        msg = "key 'memory_mb': must be even (guest RAM is mapped in 2 MiB pages)";
    else if (c->workload == KVC_WL_DIRTY
             && (uint64_t)c->working_set_mb + KVC_GPA_WORKSET / (1u << 20) > c->memory_mb) {
        snprintf(buf, sizeof(buf), "key 'guest.working_set_mb': %u MiB does not fit in %llu MiB "
                 "of RAM (the working set starts at 16 MiB)", c->working_set_mb,
                 (unsigned long long)c->memory_mb);
        msg = buf;
    }
    if (!msg && net_from_config(c, s, buf, sizeof(buf)) < 0)
        msg = buf;
    if (!msg) {
        rc = copy_path(c, c->disk_path, sizeof(c->disk_path), kvc_cfg_string(s, "disk.path"),
                       "disk.path", err, errlen);
        if (rc)
            return -EINVAL;
        c->disk_readonly = kvc_cfg_bool(s, "disk.readonly");
        c->guest_disk_test = (unsigned)kvc_cfg_enum_index(s, "guest.disk_test");
        c->guest_disk_seed = (unsigned)kvc_cfg_int(s, "guest.disk_seed");
        c->guest_disk_mb = (unsigned)kvc_cfg_int(s, "guest.disk_mb");
        if (c->guest_disk_test && !c->disk_path[0])
            msg = "key 'guest.disk_test': needs 'disk.path'";
    }
    if (msg) {
        snprintf(err, errlen, "%s: %s", c->path, msg);
        return -EINVAL;
    }
    return 0;
}

static void set_paths(struct vmx_config *c, const char *name)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->path, sizeof(c->path), "%s", name);
    snprintf(c->dir, sizeof(c->dir), "%s", name);
    char *slash = strrchr(c->dir, '/');
    if (slash == c->dir)
        c->dir[1] = 0;
    else if (slash)
        *slash = 0;
    else
        snprintf(c->dir, sizeof(c->dir), ".");
}

static int finish(struct vmx_config *c, int rc, struct kvc_config *kc, char *errs,
                  char *err, size_t errlen)
{
    if (rc == 0)
        rc = from_config(c, kc, err, errlen);
    else if (err)
        snprintf(err, errlen, "%s", errs ? errs : strerror(-rc));
    if (err) {
        size_t n = strlen(err);
        while (n && err[n - 1] == '\n')
            err[--n] = 0;
    }
    free(errs);
    kvc_config_free(kc);
    return rc;
}

int vmx_config_parse(const char *name, const char *text, struct vmx_config *c,
                     char *err, size_t errlen)
{
    struct kvc_config *kc = NULL;
    char *errs = NULL;
    set_paths(c, name);
    int rc = kvc_config_parse(&vmx_config_schema, name, text, strlen(text), &kc, &errs);
    return finish(c, rc, kc, errs, err, errlen);
}

int vmx_config_load(const char *path, struct vmx_config *c, char *err, size_t errlen)
{
    struct kvc_config *kc = NULL;
    char *errs = NULL;
    set_paths(c, path);
    int rc = kvc_config_load(&vmx_config_schema, path, &kc, &errs);
    return finish(c, rc, kc, errs, err, errlen);
}
