/* The disk test: a minimal virtio-blk driver at CPL3 (MMIO registers are
 * written directly; completions are polled from the used ring, so no
 * interrupt is routed and CPL0 is never entered for I/O).
 *
 * Boot words (vmx adds them when guest.disk_test is set):
 *     disk=write|verify|bench|loop disk_seed=N disk_mb=M
 * write:  writes a pattern derived from (seed, sector, word) over the first
 *         M MiB, flushes, reads it back and verifies;
 * verify: only reads and verifies (data written by an earlier boot);
 * bench:  times M MiB of sequential writes (+ flush) and reads.
 * Every mode first probes requests the device must refuse (past the end,
 * straddling the end, a length not a multiple of 512, an unknown type).
 *
 * Serial lines (tests grep them):
 *     KVC-GUEST: disk ready capacity=N ro=R id=ID
 *     KVC-GUEST: disk probe past_end=S straddle=S odd_len=S bad_type=S
 *     KVC-GUEST: disk write sectors=N errors=E flush=S
 *     KVC-GUEST: disk verify sectors=N bad=B errors=E first_bad=X
 *     KVC-GUEST: disk bench bytes=N write_us=W read_us=R
 *     KVC-GUEST: disk loop pass=P seed=S   (loop: after each write+verify)
 *     KVC-GUEST: disk done */
#include "guest.h"

#define QSZ 8u
#define CHUNK (256u * 1024)         /* bytes per request (write/verify) */
#define BENCH_CHUNK (1024u * 1024)  /* bench: the device's size_max */

#define R_MAGIC 0x000
#define R_DEVICE_ID 0x008
#define R_DEV_FEAT 0x010
#define R_DEV_FEAT_SEL 0x014
#define R_DRV_FEAT 0x020
#define R_DRV_FEAT_SEL 0x024
#define R_QUEUE_SEL 0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM 0x038
#define R_QUEUE_READY 0x044
#define R_QUEUE_NOTIFY 0x050
#define R_STATUS 0x070
#define R_DESC_LO 0x080
#define R_DESC_HI 0x084
#define R_AVAIL_LO 0x090
#define R_AVAIL_HI 0x094
#define R_USED_LO 0x0a0
#define R_USED_HI 0x0a4
#define R_CONFIG 0x100

#define F_RO 5
#define F_BLK_SIZE 6
#define F_FLUSH 9

#define T_IN 0u
#define T_OUT 1u
#define T_FLUSH 4u
#define T_GET_ID 8u

struct vdesc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags, next;
};

struct req_hdr {
    uint32_t type, reserved;
    uint64_t sector;
};

static struct vdesc desc[QSZ] __attribute__((aligned(4096)));
static struct {
    uint16_t flags, idx, ring[QSZ], used_event;
} avail __attribute__((aligned(4096)));
static struct {
    uint16_t flags;
    volatile uint16_t idx;
    struct { uint32_t id, len; } ring[QSZ];
    uint16_t avail_event;
} used __attribute__((aligned(4096)));
static struct req_hdr hdr;
static volatile uint8_t status;
static uint8_t buf[BENCH_CHUNK] __attribute__((aligned(4096)));

static volatile uint8_t *regs;
static uint16_t last_used;
static uint64_t capacity;
static int readonly;

static void say(const char *s)
{
    syscall2(SYS_WRITE, (long)s, (long)g_strlen(s));
}

static void w32(unsigned off, uint32_t v)
{
    *(volatile uint32_t *)(regs + off) = v;
}

static uint32_t r32(unsigned off)
{
    return *(volatile uint32_t *)(regs + off);
}

static uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

/* The boot word KEY=..., from the boot-info page (vmx only). */
static const char *word(const char *key)
{
    const struct kvc_bootinfo *bi = (const void *)(uintptr_t)KVC_GPA_BOOTINFO;
    if (bi->magic != KVC_BOOTINFO_MAGIC)
        return 0;
    size_t n = g_strlen(key);
    for (const char *c = bi->cmdline; *c;) {
        while (*c == ' ')
            c++;
        size_t i = 0;
        while (i < n && c[i] == key[i])
            i++;
        if (i == n && c[n] == '=')
            return c + n + 1;
        while (*c && *c != ' ')
            c++;
    }
    return 0;
}

static uint64_t word_uint(const char *key, uint64_t dflt)
{
    const char *v = word(key);
    if (!v || *v < '0' || *v > '9')
        return dflt;
    uint64_t x = 0;
    while (*v >= '0' && *v <= '9')
        x = x * 10 + (uint64_t)(*v++ - '0');
    return x;
}

static int word_is(const char *key, const char *val)
{
    const char *v = word(key);
    if (!v)
        return 0;
    size_t n = g_strlen(val);
    for (size_t i = 0; i < n; i++)
        if (v[i] != val[i])
            return 0;
    return v[n] == ' ' || v[n] == 0;
}

/* The pattern: one 64-bit word per 8 bytes of each sector (splitmix64). */
static uint64_t pattern(uint64_t seed, uint64_t sector, unsigned w)
{
    uint64_t z = seed * 0x9e3779b97f4a7c15ull + (sector << 6 | w) + 0x632be59bd9b4e019ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* One request, synchronously: returns the status byte (0xff: the device
 * did not answer, which cannot happen with vmx but ends the test). */
static unsigned request(uint32_t type, uint64_t sector, void *data, uint32_t len, int dev_writes)
{
    hdr.type = type;
    hdr.reserved = 0;
    hdr.sector = sector;
    status = 0xee;
    unsigned n = 0;
    desc[n] = (struct vdesc){ (uint64_t)(uintptr_t)&hdr, sizeof(hdr), 1, 1 };
    n++;
    if (len) {
        desc[n] = (struct vdesc){ (uint64_t)(uintptr_t)data, len, (uint16_t)(1 | (dev_writes ? 2 : 0)), 2 };
        n++;
    }
    desc[n - 1].next = (uint16_t)n;
    desc[n] = (struct vdesc){ (uint64_t)(uintptr_t)&status, 1, 2, 0 };
    avail.ring[avail.idx % QSZ] = 0;
    __atomic_store_n(&avail.idx, (uint16_t)(avail.idx + 1), __ATOMIC_RELEASE);
    w32(R_QUEUE_NOTIFY, 0);
    /* vmx completes the request before the notify write returns; a slower
     * device would make this spin. */
    for (uint64_t spins = 0; __atomic_load_n(&used.idx, __ATOMIC_ACQUIRE) == last_used; spins++)
        if (spins > 2000000000ull)
            return 0xff;
    last_used++;
    return status;
}

static int init(void)
{
    regs = (volatile uint8_t *)(uintptr_t)(KVC_GPA_MMIO_BASE + KVC_MMIO_SLOT_BLK * KVC_MMIO_SLOT_SIZE);
    if (r32(R_MAGIC) != 0x74726976u || r32(R_DEVICE_ID) != 2)
        return -1;
    w32(R_STATUS, 0);
    w32(R_STATUS, 1);
    w32(R_STATUS, 1 | 2);
    w32(R_DEV_FEAT_SEL, 0);
    uint32_t f0 = r32(R_DEV_FEAT);
    readonly = (f0 >> F_RO) & 1;
    w32(R_DRV_FEAT_SEL, 0);
    w32(R_DRV_FEAT, f0 & ((1u << F_FLUSH) | (1u << F_BLK_SIZE) | (1u << F_RO)));
    w32(R_DRV_FEAT_SEL, 1);
    w32(R_DRV_FEAT, 1);                     /* VIRTIO_F_VERSION_1 */
    w32(R_STATUS, 1 | 2 | 8);
    if (!(r32(R_STATUS) & 8))
        return -2;
    w32(R_QUEUE_SEL, 0);
    if (r32(R_QUEUE_NUM_MAX) < QSZ)
        return -3;
    w32(R_QUEUE_NUM, QSZ);
    avail.flags = 1;                        /* no interrupts: we poll */
    w32(R_DESC_LO, (uint32_t)(uintptr_t)desc);
    w32(R_DESC_HI, 0);
    w32(R_AVAIL_LO, (uint32_t)(uintptr_t)&avail);
    w32(R_AVAIL_HI, 0);
    w32(R_USED_LO, (uint32_t)(uintptr_t)&used);
    w32(R_USED_HI, 0);
    w32(R_QUEUE_READY, 1);
    w32(R_STATUS, 1 | 2 | 4 | 8);
    capacity = (uint64_t)r32(R_CONFIG) | (uint64_t)r32(R_CONFIG + 4) << 32;
    last_used = used.idx;
    return 0;
}

static void fill(uint64_t seed, uint64_t sector, uint32_t sectors)
{
    uint64_t *p = (uint64_t *)(void *)buf;
    for (uint32_t s = 0; s < sectors; s++)
        for (unsigned w = 0; w < 64; w++)
            *p++ = pattern(seed, sector + s, w);
}

static void write_pass(uint64_t seed, uint64_t sectors)
{
    char line[128];
    uint64_t errors = 0;
    for (uint64_t s = 0; s < sectors;) {
        uint32_t n = sectors - s < CHUNK / 512 ? (uint32_t)(sectors - s) : CHUNK / 512;
        fill(seed, s, n);
        if (request(T_OUT, s, buf, n * 512, 0) != 0)
            errors++;
        s += n;
        user_heartbeat();
    }
    unsigned fl = request(T_FLUSH, 0, 0, 0, 0);
    g_snprintf(line, sizeof(line), "KVC-GUEST: disk write sectors=%lu errors=%lu flush=%u\n",
               sectors, errors, fl);
    say(line);
}

static void verify_pass(uint64_t seed, uint64_t sectors)
{
    char line[160];
    uint64_t errors = 0, bad = 0, first_bad = (uint64_t)-1;
    for (uint64_t s = 0; s < sectors;) {
        uint32_t n = sectors - s < CHUNK / 512 ? (uint32_t)(sectors - s) : CHUNK / 512;
        if (request(T_IN, s, buf, n * 512, 1) != 0) {
            errors++;
        } else {
            const uint64_t *p = (const uint64_t *)(const void *)buf;
            for (uint32_t k = 0; k < n; k++) {
                int ok = 1;
                for (unsigned w = 0; w < 64; w++)
                    if (p[k * 64 + w] != pattern(seed, s + k, w))
                        ok = 0;
                if (!ok) {
                    bad++;
                    if (first_bad == (uint64_t)-1)
                        first_bad = s + k;
                }
            }
        }
        s += n;
        user_heartbeat();
    }
    g_snprintf(line, sizeof(line), "KVC-GUEST: disk verify sectors=%lu bad=%lu errors=%lu first_bad=%lx\n",
               sectors, bad, errors, first_bad);
    say(line);
}

static void bench(uint64_t seed, uint64_t sectors)
{
    char line[128];
    const struct kvc_bootinfo *bi = (const void *)(uintptr_t)KVC_GPA_BOOTINFO;
    uint64_t khz = bi->tsc_khz ? bi->tsc_khz : 1;
    uint64_t errors = 0;
    fill(seed, 0, BENCH_CHUNK / 512);
    uint64_t t0 = rdtsc();
    for (uint64_t s = 0; s < sectors; s += BENCH_CHUNK / 512)
        errors += request(T_OUT, s, buf, BENCH_CHUNK, 0) != 0;
    errors += request(T_FLUSH, 0, 0, 0, 0) != 0;
    uint64_t t1 = rdtsc();
    user_heartbeat();
    uint64_t t2 = rdtsc();
    for (uint64_t s = 0; s < sectors; s += BENCH_CHUNK / 512)
        errors += request(T_IN, s, buf, BENCH_CHUNK, 1) != 0;
    uint64_t t3 = rdtsc();
    g_snprintf(line, sizeof(line), "KVC-GUEST: disk bench bytes=%lu write_us=%lu read_us=%lu errors=%lu\n",
               sectors * 512, (t1 - t0) * 1000 / khz, (t3 - t2) * 1000 / khz, errors);
    say(line);
}

void blk_main(void)
{
    char line[160];
    int mode = word_is("disk", "write") ? 1 : word_is("disk", "verify") ? 2 : word_is("disk", "bench") ? 3
             : word_is("disk", "loop") ? 4 : 0;
    if (!mode)
        return;
    int rc = init();
    if (rc < 0) {
        g_snprintf(line, sizeof(line), "KVC-GUEST: disk error init=%d\n", rc);
        say(line);
        return;
    }
    char id[21];
    memset(id, 0, sizeof(id));
    request(T_GET_ID, 0, id, 20, 1);
    for (int i = 0; i < 20; i++)
        if (id[i] && (id[i] < 0x21 || id[i] > 0x7e))
            id[i] = '?';
    g_snprintf(line, sizeof(line), "KVC-GUEST: disk ready capacity=%lu ro=%u id=%s\n", capacity,
               (unsigned)readonly, id);
    say(line);
    /* Requests the device must refuse, each on its own: the disk and the
     * queue keep working afterwards. */
    unsigned past = request(T_IN, capacity, buf, 512, 1);
    unsigned straddle = request(T_IN, capacity - 1, buf, 1024, 1);
    unsigned odd = request(T_IN, 0, buf, 100, 1);
    unsigned type = request(77, 0, buf, 512, 1);
    g_snprintf(line, sizeof(line), "KVC-GUEST: disk probe past_end=%u straddle=%u odd_len=%u bad_type=%u\n",
               past, straddle, odd, type);
    say(line);

    uint64_t seed = word_uint("disk_seed", 1);
    uint64_t sectors = word_uint("disk_mb", 4) * 2048;
    if (sectors > capacity)
        sectors = capacity;
    if (mode == 4) {
        /* loop: write and verify pass after pass, seed, seed+1, ..., for
         * ever (storage migration tests move the disk under it). */
        for (uint64_t pass = 0;; pass++) {
            write_pass(seed + pass, sectors);
            verify_pass(seed + pass, sectors);
            g_snprintf(line, sizeof(line), "KVC-GUEST: disk loop pass=%lu seed=%lu\n", pass, seed + pass);
            say(line);
        }
    }
    if (mode == 3) {
        sectors &= ~(uint64_t)(BENCH_CHUNK / 512 - 1);
        bench(seed, sectors);
    } else {
        if (mode == 1)
            write_pass(seed, sectors);
        verify_pass(seed, sectors);
    }
    say("KVC-GUEST: disk done\n");
}
