/* The CIM class model: which classes exist, how they inherit, and where each
 * concrete class's instances come from (/proc, /sys, the host's VM list).
 *
 * Concrete classes are KVC_ subclasses of the DMTF classes monitors ask for
 * (CIM_ComputerSystem, CIM_Processor, ...), as sfcb providers do with their
 * own prefixes; asking for the CIM_ class returns them through inheritance.
 */
#include "hostd/cim/cim.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"

KVC_LOG_MODULE(cim);

#define HOST_CLASS "KVC_UnitaryComputerSystem"

/* ---- instance building ---- */

void
cim_instance_list_free(struct cim_instance_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        for (int p = 0; p < l->v[i].nprops; p++)
            free(l->v[i].props[p].value);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

static struct cim_instance *
inst_new(struct cim_instance_list *l, const char *classname)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct cim_instance *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return NULL;
        l->v = v;
        l->cap = cap;
    }
    struct cim_instance *i = &l->v[l->n++];
    memset(i, 0, sizeof *i);
    i->classname = classname;
    return i;
}

/* Add a property; fmt NULL makes it NULL-valued.  Returns 0 or -ENOMEM. */
static int __attribute__((format(printf, 5, 6)))
prop(struct cim_instance *i, const char *name, enum cim_type t, unsigned flags,
     const char *fmt, ...)
{
    if (i->nprops >= CIM_MAX_PROPS)
        kvc_fatal("too many properties in %s", i->classname);
    struct cim_prop *p = &i->props[i->nprops];
    p->name = name;
    p->type = t;
    p->key = flags & 1;
    p->array = flags & 2;
    p->value = NULL;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        int r = vasprintf(&p->value, fmt, ap);
        va_end(ap);
        if (r < 0) {
            p->value = NULL;
            return -ENOMEM;
        }
    }
    i->nprops++;
    return 0;
}
#define KEY 1u
#define ARR 2u

/* ---- reading /proc and /sys ---- */

static const char *
sysroot(const struct kvc_cim_provider *pv)
{
    return pv->sysroot ? pv->sysroot : "";
}

static int
read_path(const struct kvc_cim_provider *pv, char *buf, size_t size, const char *rel)
{
    char path[1024];
    snprintf(path, sizeof path, "%s%s", sysroot(pv), rel);
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    size_t n = fread(buf, 1, size - 1, f);
    int err = ferror(f) ? -EIO : 0;
    fclose(f);
    if (err)
        return err;
    buf[n] = 0;
    while (n && isspace((unsigned char)buf[n - 1]))
        buf[--n] = 0;
    return 0;
}

/* Read a small file (path under sysroot, printf-style), trailing whitespace
 * stripped.  Returns 0 or -errno. */
static int __attribute__((format(printf, 4, 5)))
read_str(const struct kvc_cim_provider *pv, char *buf, size_t size,
         const char *fmt, ...)
{
    char rel[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    return read_path(pv, buf, size, rel);
}

/* Read an integer file.  Returns 0 or -errno. */
static int __attribute__((format(printf, 3, 4)))
read_ll(const struct kvc_cim_provider *pv, long long *v, const char *fmt, ...)
{
    char rel[900], buf[64], *end;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    int r = read_path(pv, buf, sizeof buf, rel);
    if (r < 0)
        return r;
    errno = 0;
    *v = strtoll(buf, &end, 0);
    if (errno || end == buf)
        return -EINVAL;
    return 0;
}

static void
host_name(const struct kvc_cim_provider *pv, char *buf, size_t size)
{
    if (pv->hostname && *pv->hostname) {
        snprintf(buf, size, "%s", pv->hostname);
        return;
    }
    if (gethostname(buf, size) < 0 || !*buf)
        snprintf(buf, size, "localhost");
    buf[size - 1] = 0;
}

/* Properties every CIM_LogicalDevice instance of this host carries. */
static int
device_keys(struct cim_instance *i, const char *host, const char *devid)
{
    int r = 0;
    r |= prop(i, "SystemCreationClassName", CIM_T_STRING, KEY, "%s", HOST_CLASS);
    r |= prop(i, "SystemName", CIM_T_STRING, KEY, "%s", host);
    r |= prop(i, "CreationClassName", CIM_T_STRING, KEY, "%s", i->classname);
    r |= prop(i, "DeviceID", CIM_T_STRING, KEY, "%s", devid);
    return r;
}

static int
health(struct cim_instance *i, int opstatus, int healthstate, int enabled)
{
    int r = 0;
    r |= prop(i, "OperationalStatus", CIM_T_UINT16, ARR, "%d", opstatus);
    r |= prop(i, "HealthState", CIM_T_UINT16, 0, "%d", healthstate);
    if (enabled)
        r |= prop(i, "EnabledState", CIM_T_UINT16, 0, "%d", enabled);
    return r;
}

/* ---- numeric sensors (hwmon) ---- */

struct sensor_kind {
    const char *prefix;
    int sensor_type, base_units, unit_modifier;
};
static const struct sensor_kind sensor_kinds[] = {
    { "temp", 2, 2, -3 },       /* millidegrees Celsius */
    { "in", 3, 5, -3 },         /* millivolts */
    { "curr", 4, 6, -3 },       /* milliamperes */
    { "fan", 5, 19, 0 },        /* RPM */
    { "power", 13, 7, -6 },     /* microwatts */
};

/* Health from the reading against the hwmon limits; worst wins. */
struct sensor_eval {
    int health, opstatus;
    const char *state;
};

static void
sensor_eval(long long v, bool has[6], const long long lim[6], bool alarm,
            bool fault, struct sensor_eval *e)
{
    /* lim: 0 min, 1 max, 2 lcrit, 3 crit, 4 emergency (upper fatal) */
    e->health = 5;
    e->opstatus = 2;
    e->state = "Normal";
    if (has[1] && v >= lim[1]) {
        e->health = 10; e->opstatus = 3; e->state = "Upper Non-Critical";
    }
    if (has[0] && v <= lim[0]) {
        e->health = 10; e->opstatus = 3; e->state = "Lower Non-Critical";
    }
    if (alarm && e->health < 10) {
        e->health = 10; e->opstatus = 3; e->state = "Alarm";
    }
    if (has[3] && v >= lim[3]) {
        e->health = 25; e->opstatus = 6; e->state = "Upper Critical";
    }
    if (has[2] && v <= lim[2]) {
        e->health = 25; e->opstatus = 6; e->state = "Lower Critical";
    }
    if (has[4] && v >= lim[4]) {
        e->health = 30; e->opstatus = 6; e->state = "Upper Fatal";
    }
    if (fault) {
        e->health = 20; e->opstatus = 6; e->state = "Fault";
    }
}

static int
one_sensor(const struct kvc_cim_provider *pv, struct cim_instance_list *out,
           const char *host, const char *hw, const char *chip,
           const struct sensor_kind *k, const char *base)
{
    static const char *const limits[] = { "min", "max", "lcrit", "crit", "emergency" };
    static const char *const limit_props[] = {
        "LowerThresholdNonCritical", "UpperThresholdNonCritical",
        "LowerThresholdCritical", "UpperThresholdCritical", "UpperThresholdFatal",
    };
    char label[128], devid[128];
    long long v, lim[6] = { 0 }, flag;
    bool has[6] = { false };

    if (read_ll(pv, &v, "/sys/class/hwmon/%s/%s_input", hw, base) < 0)
        return 0;               /* unreadable input: not a sensor we can report */
    for (int j = 0; j < 5; j++)
        has[j] = read_ll(pv, &lim[j], "/sys/class/hwmon/%s/%s_%s", hw, base, limits[j]) == 0;
    bool alarm = read_ll(pv, &flag, "/sys/class/hwmon/%s/%s_alarm", hw, base) == 0 && flag;
    bool fault = read_ll(pv, &flag, "/sys/class/hwmon/%s/%s_fault", hw, base) == 0 && flag;
    if (read_str(pv, label, sizeof label, "/sys/class/hwmon/%s/%s_label", hw, base) < 0
        || !*label)
        snprintf(label, sizeof label, "%s %s", chip, base);
    snprintf(devid, sizeof devid, "%s.%s", hw, base);

    struct sensor_eval e;
    sensor_eval(v, has, lim, alarm, fault, &e);

    struct cim_instance *i = inst_new(out, "KVC_NumericSensor");
    if (!i)
        return -ENOMEM;
    int r = device_keys(i, host, devid);
    r |= prop(i, "ElementName", CIM_T_STRING, 0, "%s", label);
    r |= prop(i, "Name", CIM_T_STRING, 0, "%s", label);
    r |= health(i, e.opstatus, e.health, 2);
    r |= prop(i, "SensorType", CIM_T_UINT16, 0, "%d", k->sensor_type);
    r |= prop(i, "BaseUnits", CIM_T_UINT16, 0, "%d", k->base_units);
    r |= prop(i, "UnitModifier", CIM_T_SINT32, 0, "%d", k->unit_modifier);
    r |= prop(i, "RateUnits", CIM_T_UINT16, 0, "0");
    if (fault)
        r |= prop(i, "CurrentReading", CIM_T_SINT32, 0, NULL);
    else
        r |= prop(i, "CurrentReading", CIM_T_SINT32, 0, "%lld", v);
    r |= prop(i, "CurrentState", CIM_T_STRING, 0, "%s", e.state);
    for (int j = 0; j < 5; j++)
        if (has[j])
            r |= prop(i, limit_props[j], CIM_T_SINT32, 0, "%lld", lim[j]);
    return r ? -ENOMEM : 0;
}

static int
namecmp(const void *a, const void *b)
{
    return strverscmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted entry names of a directory (so instance order is stable). */
static int
list_dir(const struct kvc_cim_provider *pv, const char *rel, char ***names, size_t *n)
{
    char path[1024];
    snprintf(path, sizeof path, "%s%s", sysroot(pv), rel);
    *names = NULL;
    *n = 0;
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    size_t cap = 0;
    int r = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            char **v = realloc(*names, cap * sizeof *v);
            if (!v) { r = -ENOMEM; break; }
            *names = v;
        }
        if (!((*names)[*n] = strdup(de->d_name))) { r = -ENOMEM; break; }
        (*n)++;
    }
    closedir(d);
    if (*n)
        qsort(*names, *n, sizeof **names, namecmp);
    return r;
}

static void
free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static int
enum_sensors(const struct kvc_cim_provider *pv, struct cim_instance_list *out)
{
    char host[256];
    host_name(pv, host, sizeof host);
    char **hws, **files;
    size_t nhw, nfiles;
    int r = list_dir(pv, "/sys/class/hwmon", &hws, &nhw);
    for (size_t h = 0; r == 0 && h < nhw; h++) {
        char chip[64], rel[512];
        if (read_str(pv, chip, sizeof chip, "/sys/class/hwmon/%s/name", hws[h]) < 0)
            snprintf(chip, sizeof chip, "%s", hws[h]);
        snprintf(rel, sizeof rel, "/sys/class/hwmon/%s", hws[h]);
        r = list_dir(pv, rel, &files, &nfiles);
        for (size_t f = 0; r == 0 && f < nfiles; f++) {
            size_t len = strlen(files[f]);
            if (len < 7 || strcmp(files[f] + len - 6, "_input"))
                continue;
            char base[64];
            if (len - 6 >= sizeof base)
                continue;
            memcpy(base, files[f], len - 6);
            base[len - 6] = 0;
            for (size_t k = 0; k < sizeof sensor_kinds / sizeof *sensor_kinds; k++) {
                size_t pl = strlen(sensor_kinds[k].prefix);
                if (!strncmp(base, sensor_kinds[k].prefix, pl) && isdigit((unsigned char)base[pl])
                    && strspn(base + pl, "0123456789") == strlen(base + pl)) {
                    r = one_sensor(pv, out, host, hws[h], chip, &sensor_kinds[k], base);
                    break;
                }
            }
        }
        free_names(files, nfiles);
    }
    free_names(hws, nhw);
    return r;
}

/* ---- host, processors, memory ---- */

struct meminfo {
    long long total_kb, avail_kb;
};

static int
read_meminfo(const struct kvc_cim_provider *pv, struct meminfo *m)
{
    char path[1024], line[256];
    snprintf(path, sizeof path, "%s/proc/meminfo", sysroot(pv));
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    m->total_kb = m->avail_kb = -1;
    while (fgets(line, sizeof line, f)) {
        long long v;
        if (sscanf(line, "MemTotal: %lld kB", &v) == 1)
            m->total_kb = v;
        else if (sscanf(line, "MemAvailable: %lld kB", &v) == 1)
            m->avail_kb = v;
    }
    fclose(f);
    return m->total_kb < 0 ? -EINVAL : 0;
}

struct cpu {
    int index;
    char model[128];
    double mhz;
    char stepping[16];
};

/* Parse /proc/cpuinfo into *cpus (malloc'ed).  Returns 0 or -errno. */
static int
read_cpuinfo(const struct kvc_cim_provider *pv, struct cpu **cpus, size_t *n)
{
    char path[1024], line[4096];
    snprintf(path, sizeof path, "%s/proc/cpuinfo", sysroot(pv));
    *cpus = NULL;
    *n = 0;
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    size_t cap = 0;
    struct cpu *cur = NULL;
    int r = 0;
    while (fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        char *val = colon + 1;
        while (*val == ' ' || *val == '\t')
            val++;
        val[strcspn(val, "\n")] = 0;
        *colon = 0;
        for (char *e = colon - 1; e >= line && isspace((unsigned char)*e); e--)
            *e = 0;
        if (!strcmp(line, "processor")) {
            if (*n == cap) {
                cap = cap ? cap * 2 : 8;
                struct cpu *v = realloc(*cpus, cap * sizeof *v);
                if (!v) { r = -ENOMEM; break; }
                *cpus = v;
            }
            cur = &(*cpus)[(*n)++];
            memset(cur, 0, sizeof *cur);
            cur->index = atoi(val);
        } else if (!cur) {
            continue;
        } else if (!strcmp(line, "model name")) {
            snprintf(cur->model, sizeof cur->model, "%s", val);
        } else if (!strcmp(line, "cpu MHz")) {
            cur->mhz = strtod(val, NULL);
        } else if (!strcmp(line, "stepping")) {
            snprintf(cur->stepping, sizeof cur->stepping, "%s", val);
        }
    }
    fclose(f);
    if (r < 0) {
        free(*cpus);
        *cpus = NULL;
        *n = 0;
    }
    return r;
}

static int
enum_host(const struct kvc_cim_provider *pv, struct cim_instance_list *out)
{
    char host[256];
    host_name(pv, host, sizeof host);
    struct meminfo m = { -1, -1 };
    struct cpu *cpus = NULL;
    size_t ncpu = 0;
    read_meminfo(pv, &m);
    int r = read_cpuinfo(pv, &cpus, &ncpu);
    free(cpus);
    if (r < 0)
        return r;

    /* The host's health rolls up its sensors' health (worst wins). */
    struct cim_instance_list sensors = { 0 };
    int worst = 5;
    if (enum_sensors(pv, &sensors) == 0)
        for (size_t s = 0; s < sensors.n; s++)
            for (int p = 0; p < sensors.v[s].nprops; p++)
                if (!strcmp(sensors.v[s].props[p].name, "HealthState")
                    && sensors.v[s].props[p].value
                    && atoi(sensors.v[s].props[p].value) > worst)
                    worst = atoi(sensors.v[s].props[p].value);
    cim_instance_list_free(&sensors);

    struct cim_instance *i = inst_new(out, HOST_CLASS);
    if (!i)
        return -ENOMEM;
    r = prop(i, "CreationClassName", CIM_T_STRING, KEY, HOST_CLASS);
    r |= prop(i, "Name", CIM_T_STRING, KEY, "%s", host);
    r |= prop(i, "ElementName", CIM_T_STRING, 0, "%s", host);
    r |= prop(i, "Caption", CIM_T_STRING, 0, "kvcenter host");
    r |= prop(i, "NameFormat", CIM_T_STRING, 0, "Other");
    r |= health(i, worst <= 5 ? 2 : worst <= 10 ? 3 : 6, worst, 2);
    r |= prop(i, "Dedicated", CIM_T_UINT16, ARR, "0");
    r |= prop(i, "KVC_NumberOfProcessors", CIM_T_UINT32, 0, "%zu", ncpu);
    if (m.total_kb >= 0)
        r |= prop(i, "KVC_MemoryTotalKB", CIM_T_UINT64, 0, "%lld", m.total_kb);
    return r ? -ENOMEM : 0;
}

static int
enum_processors(const struct kvc_cim_provider *pv, struct cim_instance_list *out)
{
    char host[256];
    host_name(pv, host, sizeof host);
    struct cpu *cpus;
    size_t n;
    int r = read_cpuinfo(pv, &cpus, &n);
    if (r < 0)
        return r;
    for (size_t c = 0; r == 0 && c < n; c++) {
        char devid[32], online[8];
        snprintf(devid, sizeof devid, "CPU%d", cpus[c].index);
        bool on = read_str(pv, online, sizeof online,
                           "/sys/devices/system/cpu/cpu%d/online", cpus[c].index) < 0
                  || !strcmp(online, "1");
        long long maxkhz;
        bool hasmax = read_ll(pv, &maxkhz, "/sys/devices/system/cpu/cpu%d/cpufreq/cpuinfo_max_freq",
                              cpus[c].index) == 0;
        struct cim_instance *i = inst_new(out, "KVC_Processor");
        if (!i) { r = -ENOMEM; break; }
        r = device_keys(i, host, devid);
        r |= prop(i, "ElementName", CIM_T_STRING, 0, "%s",
                  *cpus[c].model ? cpus[c].model : devid);
        r |= prop(i, "Name", CIM_T_STRING, 0, "%s", *cpus[c].model ? cpus[c].model : devid);
        r |= health(i, on ? 2 : 10, 5, on ? 2 : 3);
        r |= prop(i, "CPUStatus", CIM_T_UINT16, 0, "%d", on ? 1 : 2);
        r |= prop(i, "CurrentClockSpeed", CIM_T_UINT32, 0, "%.0f", cpus[c].mhz);
        r |= prop(i, "MaxClockSpeed", CIM_T_UINT32, 0, "%.0f",
                  hasmax ? maxkhz / 1000.0 : cpus[c].mhz);
        if (*cpus[c].stepping)
            r |= prop(i, "Stepping", CIM_T_STRING, 0, "%s", cpus[c].stepping);
        if (r)
            r = -ENOMEM;
    }
    free(cpus);
    return r;
}

static int
enum_memory(const struct kvc_cim_provider *pv, struct cim_instance_list *out)
{
    char host[256];
    host_name(pv, host, sizeof host);
    struct meminfo m;
    int r = read_meminfo(pv, &m);
    if (r < 0)
        return r;
    /* Less than 5% available: the host is short of memory. */
    bool low = m.avail_kb >= 0 && m.avail_kb * 20 < m.total_kb;
    struct cim_instance *i = inst_new(out, "KVC_Memory");
    if (!i)
        return -ENOMEM;
    r = device_keys(i, host, "memory0");
    r |= prop(i, "ElementName", CIM_T_STRING, 0, "System Memory");
    r |= prop(i, "Name", CIM_T_STRING, 0, "System Memory");
    r |= health(i, low ? 3 : 2, low ? 10 : 5, 2);
    r |= prop(i, "Volatile", CIM_T_BOOLEAN, 0, "TRUE");
    r |= prop(i, "BlockSize", CIM_T_UINT64, 0, "1024");
    r |= prop(i, "NumberOfBlocks", CIM_T_UINT64, 0, "%lld", m.total_kb);
    r |= prop(i, "ConsumableBlocks", CIM_T_UINT64, 0, "%lld", m.total_kb);
    if (m.avail_kb >= 0)
        r |= prop(i, "KVC_AvailableBlocks", CIM_T_UINT64, 0, "%lld", m.avail_kb);
    return r ? -ENOMEM : 0;
}

/* ---- network ports ---- */

static int
enum_ethernet(const struct kvc_cim_provider *pv, struct cim_instance_list *out)
{
    char host[256];
    host_name(pv, host, sizeof host);
    char **ifs;
    size_t n;
    int r = list_dir(pv, "/sys/class/net", &ifs, &n);
    for (size_t k = 0; r == 0 && k < n; k++) {
        const char *ifn = ifs[k];
        long long type, flags, mtu, speed;
        char mac[64], oper[32], permac[16];
        if (read_ll(pv, &type, "/sys/class/net/%s/type", ifn) < 0 || type != 1)
            continue;           /* ARPHRD_ETHER only (skips lo, tunnels) */
        if (read_str(pv, mac, sizeof mac, "/sys/class/net/%s/address", ifn) < 0)
            mac[0] = 0;
        if (read_str(pv, oper, sizeof oper, "/sys/class/net/%s/operstate", ifn) < 0)
            snprintf(oper, sizeof oper, "unknown");
        if (read_ll(pv, &flags, "/sys/class/net/%s/flags", ifn) < 0)
            flags = 0;
        bool has_mtu = read_ll(pv, &mtu, "/sys/class/net/%s/mtu", ifn) == 0;
        bool has_speed = read_ll(pv, &speed, "/sys/class/net/%s/speed", ifn) == 0
                         && speed > 0;
        /* MAC as CIM writes it: 12 hex digits, no separators. */
        size_t o = 0;
        for (const char *c = mac; *c && o < 12; c++)
            if (isxdigit((unsigned char)*c))
                permac[o++] = toupper((unsigned char)*c);
        permac[o] = 0;

        bool admin_up = flags & 1;      /* IFF_UP */
        bool link = !strcmp(oper, "up") || !strcmp(oper, "unknown");
        /* OperationalStatus: 2 OK, 10 Stopped (admin down), 13 Lost
         * Communication (no carrier).  An unplugged spare port is not a
         * hardware fault, so HealthState stays OK. */
        int ops = !admin_up ? 10 : link ? 2 : 13;

        struct cim_instance *i = inst_new(out, "KVC_EthernetPort");
        if (!i) { r = -ENOMEM; break; }
        r = device_keys(i, host, ifn);
        r |= prop(i, "ElementName", CIM_T_STRING, 0, "%s", ifn);
        r |= prop(i, "Name", CIM_T_STRING, 0, "%s", ifn);
        r |= health(i, ops, 5, admin_up ? 2 : 3);
        r |= prop(i, "PermanentAddress", CIM_T_STRING, 0, "%s", permac);
        r |= prop(i, "NetworkAddresses", CIM_T_STRING, ARR, "%s", mac);
        r |= prop(i, "LinkTechnology", CIM_T_UINT16, 0, "2");
        r |= prop(i, "PortType", CIM_T_UINT16, 0, "0");
        if (has_speed)
            r |= prop(i, "Speed", CIM_T_UINT64, 0, "%lld", speed * 1000000);
        if (has_mtu)
            r |= prop(i, "ActiveMaximumTransmissionUnit", CIM_T_UINT64, 0, "%lld", mtu);
        r |= prop(i, "KVC_OperState", CIM_T_STRING, 0, "%s", oper);
        if (r)
            r = -ENOMEM;
    }
    free_names(ifs, n);
    return r;
}

/* ---- virtual machines ---- */

static int
enum_vms(const struct kvc_cim_provider *pv, struct cim_instance_list *out)
{
    if (!pv->list_vms)
        return 0;
    char host[256];
    host_name(pv, host, sizeof host);
    struct kvc_cim_vm *vms = NULL;
    size_t n = 0;
    int r = pv->list_vms(pv->ctx, &vms, &n);
    if (r < 0)
        return r;
    for (size_t k = 0; r == 0 && k < n; k++) {
        struct kvc_cim_vm *vm = &vms[k];
        vm->name[sizeof vm->name - 1] = 0;
        vm->uuid[sizeof vm->uuid - 1] = 0;
        vm->power_state[sizeof vm->power_state - 1] = 0;
        vm->guest_os[sizeof vm->guest_os - 1] = 0;
        /* EnabledState per DSP1057: 2 Enabled, 3 Disabled, 6 Enabled but
         * Offline (suspended); OperationalStatus 2 OK, 10 Stopped, 15 Dormant. */
        int es = 3, ops = 10;
        if (!strcmp(vm->power_state, "poweredOn"))
            es = 2, ops = 2;
        else if (!strcmp(vm->power_state, "suspended"))
            es = 6, ops = 15;
        struct cim_instance *i = inst_new(out, "KVC_VirtualMachine");
        if (!i) { r = -ENOMEM; break; }
        r = prop(i, "CreationClassName", CIM_T_STRING, KEY, "KVC_VirtualMachine");
        r |= prop(i, "Name", CIM_T_STRING, KEY, "%s", *vm->uuid ? vm->uuid : vm->name);
        r |= prop(i, "ElementName", CIM_T_STRING, 0, "%s", vm->name);
        r |= health(i, ops, 5, es);
        r |= prop(i, "KVC_PowerState", CIM_T_STRING, 0, "%s", vm->power_state);
        r |= prop(i, "KVC_MemoryMB", CIM_T_UINT64, 0, "%llu", (unsigned long long)vm->memory_mb);
        r |= prop(i, "KVC_NumCPUs", CIM_T_UINT32, 0, "%u", vm->vcpus);
        r |= prop(i, "KVC_GuestOS", CIM_T_STRING, 0, "%s", vm->guest_os);
        r |= prop(i, "KVC_UUID", CIM_T_STRING, 0, "%s", vm->uuid);
        r |= prop(i, "KVC_HostName", CIM_T_STRING, 0, "%s", host);
        if (r)
            r = -ENOMEM;
    }
    free(vms);
    return r;
}

/* ---- root/interop ---- */

static int
enum_namespaces(const struct kvc_cim_provider *pv, struct cim_instance_list *out)
{
    static const char *const nss[] = { "root/cimv2", "root/interop" };
    char host[256];
    host_name(pv, host, sizeof host);
    for (size_t k = 0; k < 2; k++) {
        struct cim_instance *i = inst_new(out, "KVC_Namespace");
        if (!i)
            return -ENOMEM;
        int r = prop(i, "SystemCreationClassName", CIM_T_STRING, KEY, HOST_CLASS);
        r |= prop(i, "SystemName", CIM_T_STRING, KEY, "%s", host);
        r |= prop(i, "ObjectManagerCreationClassName", CIM_T_STRING, KEY, "KVC_ObjectManager");
        r |= prop(i, "ObjectManagerName", CIM_T_STRING, KEY, "kvcenter:cimom");
        r |= prop(i, "CreationClassName", CIM_T_STRING, KEY, "KVC_Namespace");
        r |= prop(i, "Name", CIM_T_STRING, KEY, "%s", nss[k]);
        r |= prop(i, "ElementName", CIM_T_STRING, 0, "%s", nss[k]);
        r |= prop(i, "ClassInfo", CIM_T_UINT16, 0, "0");
        if (r)
            return -ENOMEM;
    }
    return 0;
}

static int
enum_objectmanager(const struct kvc_cim_provider *pv, struct cim_instance_list *out)
{
    char host[256];
    host_name(pv, host, sizeof host);
    struct cim_instance *i = inst_new(out, "KVC_ObjectManager");
    if (!i)
        return -ENOMEM;
    int r = prop(i, "SystemCreationClassName", CIM_T_STRING, KEY, HOST_CLASS);
    r |= prop(i, "SystemName", CIM_T_STRING, KEY, "%s", host);
    r |= prop(i, "CreationClassName", CIM_T_STRING, KEY, "KVC_ObjectManager");
    r |= prop(i, "Name", CIM_T_STRING, KEY, "kvcenter:cimom");
    r |= prop(i, "ElementName", CIM_T_STRING, 0, "kvcenter CIM server");
    r |= health(i, 2, 5, 2);
    r |= prop(i, "Started", CIM_T_BOOLEAN, 0, "TRUE");
    return r ? -ENOMEM : 0;
}

/* ---- the class table ---- */

#define BOTH (CIM_NS_CIMV2 | CIM_NS_INTEROP)
const struct cim_class cim_classes[] = {
    { "CIM_ManagedElement", NULL, 0, NULL },
    { "CIM_ManagedSystemElement", "CIM_ManagedElement", 0, NULL },
    { "CIM_LogicalElement", "CIM_ManagedSystemElement", 0, NULL },
    { "CIM_EnabledLogicalElement", "CIM_LogicalElement", 0, NULL },
    { "CIM_System", "CIM_EnabledLogicalElement", 0, NULL },
    { "CIM_ComputerSystem", "CIM_System", 0, NULL },
    { "CIM_UnitaryComputerSystem", "CIM_ComputerSystem", 0, NULL },
    { HOST_CLASS, "CIM_UnitaryComputerSystem", BOTH, enum_host },
    { "KVC_VirtualMachine", "CIM_ComputerSystem", CIM_NS_CIMV2, enum_vms },
    { "CIM_LogicalDevice", "CIM_EnabledLogicalElement", 0, NULL },
    { "CIM_Processor", "CIM_LogicalDevice", 0, NULL },
    { "KVC_Processor", "CIM_Processor", CIM_NS_CIMV2, enum_processors },
    { "CIM_StorageExtent", "CIM_LogicalDevice", 0, NULL },
    { "CIM_Memory", "CIM_StorageExtent", 0, NULL },
    { "KVC_Memory", "CIM_Memory", CIM_NS_CIMV2, enum_memory },
    { "CIM_LogicalPort", "CIM_LogicalDevice", 0, NULL },
    { "CIM_NetworkPort", "CIM_LogicalPort", 0, NULL },
    { "CIM_EthernetPort", "CIM_NetworkPort", 0, NULL },
    { "KVC_EthernetPort", "CIM_EthernetPort", CIM_NS_CIMV2, enum_ethernet },
    { "CIM_Sensor", "CIM_LogicalDevice", 0, NULL },
    { "CIM_NumericSensor", "CIM_Sensor", 0, NULL },
    { "KVC_NumericSensor", "CIM_NumericSensor", CIM_NS_CIMV2, enum_sensors },
    { "CIM_Namespace", "CIM_ManagedElement", 0, NULL },
    { "KVC_Namespace", "CIM_Namespace", CIM_NS_INTEROP, enum_namespaces },
    { "CIM_Service", "CIM_EnabledLogicalElement", 0, NULL },
    { "CIM_WBEMService", "CIM_Service", 0, NULL },
    { "CIM_ObjectManager", "CIM_WBEMService", 0, NULL },
    { "KVC_ObjectManager", "CIM_ObjectManager", CIM_NS_INTEROP, enum_objectmanager },
};
const size_t cim_nclasses = sizeof cim_classes / sizeof *cim_classes;

const struct cim_class *
cim_class_find(const char *name)
{
    for (size_t k = 0; k < cim_nclasses; k++)
        if (!strcasecmp(cim_classes[k].name, name))
            return &cim_classes[k];
    return NULL;
}

bool
cim_class_is_a(const struct cim_class *c, const struct cim_class *ancestor)
{
    for (int depth = 0; c && depth < 32; depth++) {
        if (c == ancestor)
            return true;
        c = c->super ? cim_class_find(c->super) : NULL;
    }
    return false;
}

bool
cim_class_in_ns(const struct cim_class *c, unsigned int ns)
{
    for (size_t k = 0; k < cim_nclasses; k++)
        if ((cim_classes[k].ns_mask & ns) && cim_class_is_a(&cim_classes[k], c))
            return true;
    return false;
}

int
cim_enumerate(const struct kvc_cim_provider *pv, const struct cim_class *c,
              unsigned int ns, struct cim_instance_list *out)
{
    for (size_t k = 0; k < cim_nclasses; k++) {
        const struct cim_class *d = &cim_classes[k];
        if (!d->enumerate || !(d->ns_mask & ns) || !cim_class_is_a(d, c))
            continue;
        int r = d->enumerate(pv, out);
        if (r < 0) {
            kvc_warn("enumerate %s: %s", d->name, strerror(-r));
            return r;
        }
    }
    return 0;
}
