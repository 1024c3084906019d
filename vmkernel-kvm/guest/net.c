/* The test guest's network workload: a minimal virtio-net driver (virtio
 * 1.x over virtio-mmio, polled, everything at CPL3) with ARP, ICMP echo,
 * a UDP echo server (port 7), a UDP discard counter (port 9) and the active
 * modes ping (ICMP echo requests), udping (UDP echo round trips, timed with
 * the TSC) and flood (UDP to the peer's discard port as fast as the rings
 * take it).  Parameters come from the command line words vmx writes (or
 * QEMU's -append): net=ADDR (or QEMU's virtio_mmio.device=SIZE@ADDR:IRQ)
 * net_mode= ip= peer= net_count= net_size= net_forge= net_vlan= tsc_khz=.
 *
 * Serial lines (all "KVC-GUEST: net ..."): "up", "arp peer=...", "ping
 * seq=N rtt_us=U", "ping done ...", "udping done ...", "flood done ...",
 * and "stats ..." once a second while counters move.  The tools device gets
 * the IP (tools.ip) and rx/tx packet counts (tools.counter / checksum). */
#include "guest.h"

#define NQ 64                   /* descriptors per queue */
#define BUF 2048                /* bytes per buffer: header + a 1500-byte MTU frame */
#define HDR 12                  /* virtio_net_hdr_v1 */
#define ETH 14

enum { M_NONE, M_LISTEN, M_ECHO, M_PING, M_FLOOD, M_UDPING, M_HOSTILE };
static const char *const mode_names[] = { "none", "listen", "echo", "ping", "flood", "udping",
                                          "hostile", 0 };

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct avail { uint16_t flags, idx, ring[NQ], event; };
struct used_elem { uint32_t id, len; };
struct used { uint16_t flags, idx; struct used_elem ring[NQ]; uint16_t event; };

struct vq {
    struct desc desc[NQ] __attribute__((aligned(4096)));
    struct avail avail __attribute__((aligned(4096)));
    struct used used __attribute__((aligned(4096)));
    uint16_t avail_idx, used_seen;
};

static struct vq rxq, txq;
static uint8_t rxbuf[NQ][BUF] __attribute__((aligned(4096)));
static uint8_t txbuf[NQ][BUF] __attribute__((aligned(4096)));

static volatile uint8_t *nic;
static uint8_t mymac[6], srcmac[6], peermac[6];
static uint32_t myip, peerip;
static int mode, forge, have_peer;
static uint32_t count, size, vlan, mtu;
static uint64_t tsc_khz;

static struct {
    uint64_t rx, tx, arp_rx, arp_reply, icmp_req, icmp_rep, udp_echo, udp_disc, udp_disc_bytes;
    uint64_t foreign, tagged, bad, txfull;
    uint32_t last_vid;
} st;

#define RTT_MAX 4096
static uint32_t rtts[RTT_MAX];

/* ---- small helpers ---- */

static void say(const char *s)
{
    syscall2(SYS_WRITE, (long)s, (long)g_strlen(s));
}

static void w32(unsigned off, uint32_t v) { *(volatile uint32_t *)(nic + off) = v; }
static uint32_t r32(unsigned off) { return *(volatile uint32_t *)(nic + off); }
static void barrier(void) { __asm__ volatile("" ::: "memory"); }

static uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) << 16 | get16(p + 2); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)(v >> 16)); put16(p + 2, (uint16_t)v); }

static int eq(const uint8_t *a, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

static uint16_t csum(const uint8_t *p, size_t n)
{
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        s += get16(p + i);
    if (n & 1)
        s += (uint32_t)p[n - 1] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

static const char *word(const char *c, const char *key)
{
    size_t n = g_strlen(key);
    while (c && *c) {
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

static uint64_t num(const char *v)
{
    uint64_t x = 0;
    if (v && v[0] == '0' && v[1] == 'x') {
        for (v += 2;; v++) {
            unsigned d = *v >= '0' && *v <= '9' ? (unsigned)(*v - '0')
                : (*v | 32) >= 'a' && (*v | 32) <= 'f' ? (unsigned)((*v | 32) - 'a' + 10) : 99;
            if (d > 15)
                break;
            x = x * 16 + d;
        }
        return x;
    }
    while (v && *v >= '0' && *v <= '9')
        x = x * 10 + (uint64_t)(*v++ - '0');
    return x;
}

static uint32_t ip_parse(const char *v)
{
    uint32_t ip = 0;
    for (int i = 0; i < 4 && v; i++) {
        ip = ip << 8 | (uint32_t)(num(v) & 0xff);
        while (*v >= '0' && *v <= '9')
            v++;
        if (*v == '.')
            v++;
    }
    return ip;
}

static void ip_fmt(char *b, uint32_t ip)
{
    g_snprintf(b, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

static void mac_fmt(char *b, const uint8_t *m)
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 6; i++) {
        b[i * 3] = hx[m[i] >> 4];
        b[i * 3 + 1] = hx[m[i] & 15];
        b[i * 3 + 2] = i < 5 ? ':' : 0;
    }
}

static void tools_report(void)
{
    volatile uint8_t *t = g_params.tools;
    if (!t)
        return;
    *(volatile uint32_t *)(t + KVC_TOOLS_WL_COUNTER_LO) = (uint32_t)st.rx;
    *(volatile uint32_t *)(t + KVC_TOOLS_WL_COUNTER_HI) = (uint32_t)(st.rx >> 32);
    *(volatile uint32_t *)(t + KVC_TOOLS_WL_SUM_LO) = (uint32_t)st.tx;
    *(volatile uint32_t *)(t + KVC_TOOLS_WL_SUM_HI) = (uint32_t)(st.tx >> 32);
}

static void tools_ip(void)
{
    volatile uint8_t *t = g_params.tools;
    char b[16];
    if (!t)
        return;
    ip_fmt(b, myip);
    *(volatile uint32_t *)(t + KVC_TOOLS_STR_SEL) = 2;
    size_t n = g_strlen(b);
    for (size_t i = 0; i < n; i += 4) {
        uint32_t w = 0;
        for (size_t k = 0; k < 4 && i + k < n; k++)
            w |= (uint32_t)(uint8_t)b[i + k] << (8 * k);
        *(volatile uint32_t *)(t + KVC_TOOLS_STR_DATA) = w;
    }
}

/* ---- virtio ---- */

static void setup_queue(unsigned q, struct vq *v)
{
    w32(0x30, q);
    w32(0x38, NQ);
    w32(0x80, (uint32_t)(uint64_t)v->desc);
    w32(0x84, 0);
    w32(0x90, (uint32_t)(uint64_t)&v->avail);
    w32(0x94, 0);
    w32(0xa0, (uint32_t)(uint64_t)&v->used);
    w32(0xa4, 0);
    v->avail.flags = 1;         /* VIRTQ_AVAIL_F_NO_INTERRUPT: we poll */
    w32(0x44, 1);
}

static int probe(uint64_t base)
{
    if (!base)
        return 0;
    nic = (volatile uint8_t *)base;
    if (r32(0) != 0x74726976u || r32(4) != 2 || r32(8) != 1) {
        nic = 0;
        return 0;
    }
    return 1;
}

static int nic_init(void)
{
    w32(0x70, 0);
    w32(0x70, 1 | 2);
    w32(0x14, 0);
    uint32_t lo = r32(0x10);
    w32(0x14, 1);
    uint32_t hi = r32(0x10);
    if (!(hi & 1))
        return -1;              /* no VERSION_1 */
    w32(0x24, 0);
    w32(0x20, lo & ((1u << 3) | (1u << 5) | (1u << 16)));
    w32(0x24, 1);
    w32(0x20, 1);
    w32(0x70, 1 | 2 | 8);
    if (!(r32(0x70) & 8))
        return -1;
    setup_queue(0, &rxq);
    setup_queue(1, &txq);
    for (unsigned i = 0; i < NQ; i++) {
        rxq.desc[i] = (struct desc){ (uint64_t)rxbuf[i], BUF, 2, 0 };
        rxq.avail.ring[i] = (uint16_t)i;
        txq.desc[i] = (struct desc){ (uint64_t)txbuf[i], 0, 0, 0 };
    }
    barrier();
    rxq.avail_idx = NQ;
    rxq.avail.idx = NQ;
    w32(0x70, 1 | 2 | 4 | 8);
    w32(0x50, 0);
    for (int i = 0; i < 6; i++)
        mymac[i] = (lo & (1u << 5)) ? nic[0x100 + i] : (uint8_t)(i == 0 ? 2 : i);
    mtu = (lo & (1u << 3)) ? (uint32_t)(nic[0x10a] | nic[0x10b] << 8) : 1500;
    return 0;
}

static int link_up(void)
{
    return (nic[0x106] & 1) != 0;
}

/* Frame buffer for the next transmit, or 0 if the ring is full. */
static uint8_t *tx_begin(void)
{
    txq.used_seen = txq.used.idx;
    if ((uint16_t)(txq.avail_idx - txq.used_seen) >= NQ) {
        st.txfull++;
        return 0;
    }
    uint8_t *b = txbuf[txq.avail_idx % NQ];
    for (int i = 0; i < HDR; i++)
        b[i] = 0;
    return b + HDR;
}

static void tx_commit(uint32_t len, int kick)
{
    unsigned slot = txq.avail_idx % NQ;
    txq.desc[slot].len = HDR + len;
    txq.avail.ring[slot] = (uint16_t)slot;
    barrier();
    txq.avail.idx = ++txq.avail_idx;
    st.tx++;
    if (kick)
        w32(0x50, 1);
}

/* Ethernet header (with the 802.1Q tag when net_vlan is set); returns the
 * payload offset. */
static unsigned eth(uint8_t *f, const uint8_t *dst, uint16_t type)
{
    memcpy(f, dst, 6);
    memcpy(f + 6, srcmac, 6);
    if (vlan) {
        put16(f + 12, 0x8100);
        put16(f + 14, (uint16_t)vlan);
        put16(f + 16, type);
        return 18;
    }
    put16(f + 12, type);
    return ETH;
}

static const uint8_t bcast[6] = { 255, 255, 255, 255, 255, 255 };

static void send_arp(int op, const uint8_t *tha, uint32_t tip)
{
    uint8_t *f = tx_begin();
    if (!f)
        return;
    unsigned o = eth(f, op == 1 ? bcast : tha, 0x0806);
    uint8_t *a = f + o;
    put16(a, 1);
    put16(a + 2, 0x0800);
    a[4] = 6;
    a[5] = 4;
    put16(a + 6, (uint16_t)op);
    memcpy(a + 8, mymac, 6);    /* the real MAC, even when forging the frame's source */
    put32(a + 14, myip);
    if (op == 1)
        memset(a + 18, 0, 6);
    else
        memcpy(a + 18, tha, 6);
    put32(a + 24, tip);
    tx_commit(o + 28 < 60 ? 60 : o + 28, 1);
}

/* IPv4 header at P for LEN bytes of payload to DST. */
static void ipv4(uint8_t *p, uint8_t proto, uint32_t dst, uint32_t len)
{
    static uint16_t id;
    p[0] = 0x45;
    p[1] = 0;
    put16(p + 2, (uint16_t)(20 + len));
    put16(p + 4, ++id);
    put16(p + 6, 0x4000);
    p[8] = 64;
    p[9] = proto;
    put16(p + 10, 0);
    put32(p + 12, myip);
    put32(p + 16, dst);
    put16(p + 10, csum(p, 20));
}

static void send_udp(const uint8_t *dmac, uint32_t dip, uint16_t sport, uint16_t dport,
                     const uint8_t *data, uint32_t len, int kick)
{
    uint8_t *f = tx_begin();
    if (!f)
        return;
    unsigned o = eth(f, dmac, 0x0800);
    if (o + 28 + len > BUF - HDR)
        len = BUF - HDR - o - 28;
    uint8_t *u = f + o + 20;
    put16(u, sport);
    put16(u + 2, dport);
    put16(u + 4, (uint16_t)(8 + len));
    put16(u + 6, 0);            /* no checksum (allowed for IPv4) */
    if (data)
        memcpy(u + 8, data, len);
    ipv4(f + o, 17, dip, 8 + len);
    uint32_t flen = o + 28 + len;
    tx_commit(flen < 60 ? 60 : flen, kick);
}

static void send_icmp(const uint8_t *dmac, uint32_t dip, uint8_t type, const uint8_t *rest,
                      uint32_t len)
{
    uint8_t *f = tx_begin();
    if (!f)
        return;
    unsigned o = eth(f, dmac, 0x0800);
    if (o + 20 + 4 + len > BUF - HDR)
        len = BUF - HDR - o - 24;
    uint8_t *c = f + o + 20;
    c[0] = type;
    c[1] = 0;
    put16(c + 2, 0);
    memcpy(c + 4, rest, len);
    put16(c + 2, csum(c, 4 + len));
    ipv4(f + o, 1, dip, 4 + len);
    uint32_t flen = o + 24 + len;
    tx_commit(flen < 60 ? 60 : flen, 1);
}

/* ---- receive ---- */

static uint32_t ping_seq_seen;
static uint64_t ping_sent_tsc;
static uint32_t ping_rx;
static uint64_t udp_reply_seq = (uint64_t)-1;

static void learn(const uint8_t *mac, uint32_t ip)
{
    if (ip != peerip || have_peer)
        return;
    memcpy(peermac, mac, 6);
    have_peer = 1;
    char b[96], ms[18], is[16];
    mac_fmt(ms, mac);
    ip_fmt(is, ip);
    g_snprintf(b, sizeof(b), "KVC-GUEST: net arp peer=%s mac=%s\n", is, ms);
    say(b);
}

static void rx_frame(uint8_t *f, uint32_t len)
{
    st.rx++;
    if (len < ETH) {
        st.bad++;
        return;
    }
    if (!(f[0] & 1) && !eq(f, mymac, 6))
        st.foreign++;
    uint16_t type = get16(f + 12);
    unsigned o = ETH;
    if (type == 0x8100) {
        if (len < 18) {
            st.bad++;
            return;
        }
        st.tagged++;
        st.last_vid = get16(f + 14) & 0xfff;
        if (st.last_vid != vlan)
            return;
        type = get16(f + 16);
        o = 18;
    } else if (vlan) {
        return;                 /* we live on a tagged VLAN */
    }
    if (!(f[0] & 1) && !eq(f, mymac, 6))
        return;
    uint8_t *p = f + o;
    uint32_t n = len - o;
    if (type == 0x0806) {
        if (n < 28 || get16(p) != 1 || get16(p + 2) != 0x0800 || p[4] != 6 || p[5] != 4)
            return;
        st.arp_rx++;
        uint16_t op = get16(p + 6);
        uint32_t sip = get32(p + 14), tip = get32(p + 24);
        learn(p + 8, sip);
        if (op == 1 && tip == myip && myip) {
            uint8_t sha[6];
            memcpy(sha, p + 8, 6);
            st.arp_reply++;
            send_arp(2, sha, sip);
        }
        return;
    }
    if (type != 0x0800 || n < 20 || (p[0] >> 4) != 4)
        return;
    unsigned ihl = (p[0] & 15) * 4u;
    uint32_t tot = get16(p + 2);
    if (ihl < 20 || tot < ihl || tot > n || csum(p, ihl) != 0) {
        st.bad++;
        return;
    }
    if (get32(p + 16) != myip)
        return;
    uint32_t sip = get32(p + 12);
    uint8_t *l4 = p + ihl;
    uint32_t l4n = tot - ihl;
    uint8_t smac[6];
    memcpy(smac, f + 6, 6);
    if (p[9] == 1 && l4n >= 8) {
        if (l4[0] == 8) {
            st.icmp_req++;
            send_icmp(smac, sip, 0, l4 + 4, l4n - 4);
        } else if (l4[0] == 0 && mode == M_PING && sip == peerip) {
            uint32_t seq = get16(l4 + 6);
            if (seq == ping_seq_seen + 1) {
                ping_seq_seen = seq;
                ping_rx++;
                st.icmp_rep++;
                uint64_t us = tsc_khz ? (rdtsc() - ping_sent_tsc) * 1000 / tsc_khz : 0;
                char b[80];
                g_snprintf(b, sizeof(b), "KVC-GUEST: net ping seq=%u rtt_us=%lu\n", seq, us);
                say(b);
            }
        }
    } else if (p[9] == 17 && l4n >= 8) {
        uint16_t sport = get16(l4), dport = get16(l4 + 2);
        uint32_t ulen = get16(l4 + 4);
        if (ulen < 8 || ulen > l4n)
            return;
        if (dport == 7) {
            st.udp_echo++;
            send_udp(smac, sip, 7, sport, l4 + 8, ulen - 8, 1);
        } else if (dport == 9) {
            st.udp_disc++;
            st.udp_disc_bytes += ulen - 8;
        } else if (sport == 7 && mode == M_UDPING && ulen >= 16) {
            uint64_t seq = 0;
            for (int i = 0; i < 8; i++)
                seq = seq << 8 | l4[8 + i];
            udp_reply_seq = seq;
        }
    }
}

static int poll_rx(void)
{
    int n = 0;
    uint16_t u = rxq.used.idx;
    barrier();
    while (rxq.used_seen != u) {
        struct used_elem e = rxq.used.ring[rxq.used_seen % NQ];
        rxq.used_seen++;
        if (e.id < NQ && e.len >= HDR && e.len <= BUF)
            rx_frame(rxbuf[e.id] + HDR, e.len - HDR);
        else
            st.bad++;
        rxq.avail.ring[rxq.avail_idx % NQ] = (uint16_t)(e.id < NQ ? e.id : 0);
        rxq.avail_idx++;
        n++;
    }
    if (n) {
        barrier();
        rxq.avail.idx = rxq.avail_idx;
        w32(0x50, 0);
    }
    return n;
}

/* ---- the loop ---- */

static uint64_t last_print, last_rx, last_tx;

static void print_stats(int force)
{
    if (!force && (g_ticks < last_print + KVC_GUEST_HZ || (st.rx == last_rx && st.tx == last_tx)))
        return;
    last_print = g_ticks;
    last_rx = st.rx;
    last_tx = st.tx;
    char b[256];
    g_snprintf(b, sizeof(b), "KVC-GUEST: net stats rx=%lu tx=%lu arp=%lu icmp_req=%lu icmp_rep=%lu "
               "udp_echo=%lu udp_disc=%lu disc_bytes=%lu foreign=%lu tagged=%lu vid=%u bad=%lu "
               "txfull=%lu link=%u\n", st.rx, st.tx, st.arp_rx, st.icmp_req, st.icmp_rep,
               st.udp_echo, st.udp_disc, st.udp_disc_bytes, st.foreign, st.tagged, st.last_vid,
               st.bad, st.txfull, (unsigned)link_up());
    say(b);
    tools_report();
}

static uint64_t idle_since;

/* Poll; after 20 ms without traffic, sleep a timer tick at a time. */
static void service(int may_sleep)
{
    user_heartbeat();
    if (poll_rx()) {
        idle_since = g_ticks;
        return;
    }
    print_stats(0);
    if (may_sleep && g_ticks > idle_since + 2)
        syscall2(SYS_WAIT_TICK, (long)(g_ticks + 1), 0);
    else
        __asm__ volatile("pause");
}

static void resolve_peer(void)
{
    uint64_t next = 0;
    while (!have_peer) {
        if (g_ticks >= next) {
            send_arp(1, bcast, peerip);
            next = g_ticks + KVC_GUEST_HZ / 10;
        }
        service(0);
    }
}

static void sort(uint32_t *a, uint32_t n)
{
    for (uint32_t i = 1; i < n; i++) {
        uint32_t v = a[i], j = i;
        while (j && a[j - 1] > v) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = v;
    }
}

static void do_ping(void)
{
    uint8_t rest[4 + 1472];
    uint32_t n = count ? count : 0xffffffffu;
    for (uint32_t seq = 1; seq <= n; seq++) {
        put16(rest, 0x4b56);
        put16(rest + 2, (uint16_t)seq);
        for (uint32_t i = 0; i < size && i < 1472; i++)
            rest[4 + i] = (uint8_t)i;
        ping_sent_tsc = rdtsc();
        send_icmp(peermac, peerip, 8, rest, 4 + (size < 1472 ? size : 1472));
        uint64_t deadline = g_ticks + 2 * KVC_GUEST_HZ, next = g_ticks + KVC_GUEST_HZ / 10;
        while (ping_seq_seen < seq && g_ticks < deadline)
            service(0);
        ping_seq_seen = seq;    /* a lost one does not block the next */
        while (g_ticks < next)
            service(1);
    }
    char b[96];
    g_snprintf(b, sizeof(b), "KVC-GUEST: net ping done sent=%u received=%u\n", n, ping_rx);
    say(b);
}

static void do_udping(void)
{
    uint8_t data[1472];
    uint32_t n = count ? count : 1000, got = 0;
    for (uint32_t i = 0; i < size && i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7);
    uint32_t len = size < 8 ? 8 : size > sizeof(data) ? sizeof(data) : size;
    for (uint32_t seq = 0; seq < n; seq++) {
        for (int i = 0; i < 8; i++)
            data[i] = (uint8_t)((uint64_t)seq >> (56 - 8 * i));
        uint64_t t0 = rdtsc();
        send_udp(peermac, peerip, 7777, 7, data, len, 1);
        uint64_t deadline = g_ticks + KVC_GUEST_HZ;
        while (udp_reply_seq != seq && g_ticks < deadline) {
            user_heartbeat();
            if (!poll_rx())
                __asm__ volatile("pause");
        }
        if (udp_reply_seq == seq) {
            uint64_t us10 = tsc_khz ? (rdtsc() - t0) * 10000 / tsc_khz : 0;
            if (got < RTT_MAX)
                rtts[got] = (uint32_t)us10;
            got++;
        }
    }
    uint32_t k = got < RTT_MAX ? got : RTT_MAX;
    sort(rtts, k);
    char b[200];
    /* Round trips in tenths of a microsecond. */
    g_snprintf(b, sizeof(b), "KVC-GUEST: net udping done sent=%u received=%u min_us10=%u "
               "p25_us10=%u med_us10=%u p75_us10=%u max_us10=%u\n", n, got,
               k ? rtts[0] : 0, k ? rtts[k / 4] : 0, k ? rtts[k / 2] : 0, k ? rtts[k * 3 / 4] : 0,
               k ? rtts[k - 1] : 0);
    say(b);
}

static void do_flood(void)
{
    uint32_t n = count ? count : 0xffffffffu, sent = 0;
    uint32_t len = size > 1472 ? 1472 : size;
    while (sent < n) {
        int batch = 0;
        while (batch < 32 && sent < n && tx_begin()) {
            send_udp(peermac, peerip, 9999, 9, 0, len, 0);
            sent++;
            batch++;
        }
        if (batch)
            w32(0x50, 1);
        service(0);
    }
    char b[96];
    g_snprintf(b, sizeof(b), "KVC-GUEST: net flood done sent=%u bytes=%lu\n", sent,
               (uint64_t)sent * len);
    say(b);
}

/* A misbehaving driver, for tests: frames the device must drop, a frame
 * the switch must drop, then a descriptor outside guest RAM that breaks
 * the tx queue.  The rx queue keeps working. */
static void do_hostile(void)
{
    uint8_t *f;
    static const uint8_t mcast[6] = { 0x01, 0x00, 0x5e, 0x00, 0x00, 0x01 };
    if ((f = tx_begin())) {                     /* runt: 10 bytes */
        eth(f, bcast, 0x0800);
        tx_commit(10, 1);
    }
    if ((f = tx_begin())) {                     /* above MTU + header + tag */
        unsigned o = eth(f, bcast, 0x0800);
        memset(f + o, 0xee, mtu + 8);
        tx_commit(o + mtu + 8, 1);
    }
    if ((f = tx_begin())) {                     /* a GSO header nobody negotiated */
        eth(f, bcast, 0x0800);
        f[-HDR + 1] = 1;
        tx_commit(60, 1);
    }
    if ((f = tx_begin())) {                     /* multicast source MAC: the switch drops it */
        eth(f, bcast, 0x0800);
        memcpy(f + 6, mcast, 6);
        tx_commit(60, 1);
    }
    /* A buffer far outside RAM: the device breaks the tx queue. */
    unsigned slot = txq.avail_idx % NQ;
    txq.desc[slot].addr = 0xfff00000ull;
    txq.desc[slot].len = 4096;
    txq.avail.ring[slot] = (uint16_t)slot;
    barrier();
    txq.avail.idx = ++txq.avail_idx;
    w32(0x50, 1);
    /* The device thread takes the kick on its own time: wait (10 s at
     * most: a loaded host may not run it for a while) for it to flag the
     * queue. */
    uint64_t deadline = g_ticks + 10 * KVC_GUEST_HZ;
    uint32_t status;
    while (!((status = r32(0x70)) & 64) && g_ticks < deadline)
        syscall2(SYS_WAIT_TICK, (long)(g_ticks + 1), 0);
    char b[80];
    g_snprintf(b, sizeof(b), "KVC-GUEST: net hostile done status=%x\n", status);
    say(b);
}

static void calibrate(void)
{
    uint64_t t = g_ticks + 1;
    while (g_ticks < t)
        syscall2(SYS_WAIT_TICK, (long)t, 0);
    uint64_t a = rdtsc();
    t += KVC_GUEST_HZ / 10;
    while (g_ticks < t)
        syscall2(SYS_WAIT_TICK, (long)t, 0);
    tsc_khz = (rdtsc() - a) / 100;
}

int net_configured(void)
{
    const char *c = g_params.cmdline;
    const char *m = word(c, "net_mode");
    if (!m)
        return 0;
    for (int i = 0; mode_names[i]; i++) {
        size_t l = g_strlen(mode_names[i]);
        size_t k = 0;
        while (k < l && m[k] == mode_names[i][k])
            k++;
        if (k == l && (m[l] == ' ' || m[l] == 0))
            mode = i;
    }
    if (mode == M_NONE)
        return 0;
    uint64_t base = num(word(c, "net"));
    const char *q = word(c, "virtio_mmio.device");
    /* QEMU: virtio_mmio.device=SIZE@ADDR:IRQ, one word per device. */
    for (; !probe(base) && q; q = word(q, "virtio_mmio.device")) {
        const char *at = q;
        while (*at && *at != '@' && *at != ' ')
            at++;
        base = *at == '@' ? num(at + 1) : 0;
    }
    /* QEMU microvm's transports (512 bytes each from 0xfeb00000), when its
     * command line does not name them. */
    for (unsigned i = 0; !nic && i < 24; i++)
        probe(0xfeb00000ull + i * 0x200ull);
    if (!nic) {
        say("KVC-GUEST: net no virtio-net device\n");
        return 0;
    }
    return 1;
}

void net_main(void)
{
    const char *c = g_params.cmdline;
    myip = ip_parse(word(c, "ip"));
    peerip = ip_parse(word(c, "peer"));
    count = (uint32_t)num(word(c, "net_count"));
    size = word(c, "net_size") ? (uint32_t)num(word(c, "net_size")) : 56;
    forge = (int)num(word(c, "net_forge"));
    vlan = (uint32_t)num(word(c, "net_vlan")) & 0xfff;
    tsc_khz = num(word(c, "tsc_khz"));
    if (nic_init() < 0) {
        say("KVC-GUEST: net virtio-net init failed\n");
        for (;;)
            syscall2(SYS_WAIT_TICK, (long)(g_ticks + 100), 0);
    }
    memcpy(srcmac, mymac, 6);
    if (forge)
        srcmac[5] ^= 0x55;
    if (!tsc_khz)
        calibrate();
    tools_ip();
    char b[160], ms[18], is[16];
    mac_fmt(ms, mymac);
    ip_fmt(is, myip);
    g_snprintf(b, sizeof(b), "KVC-GUEST: net up mac=%s ip=%s mode=%s mtu=%u link=%u vlan=%u\n", ms, is,
               mode_names[mode], mtu, (unsigned)link_up(), vlan);
    say(b);
    idle_since = g_ticks;
    if (mode == M_HOSTILE) {
        do_hostile();
    } else if (mode >= M_PING) {
        resolve_peer();
        if (mode == M_PING)
            do_ping();
        else if (mode == M_UDPING)
            do_udping();
        else
            do_flood();
        print_stats(1);
    }
    for (;;)
        service(1);
}
