/* vSwitch switching behaviour on dummy ports, driven synchronously
 * (vs_run_once) with a test clock, plus one threaded live-change test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "vswitch.h"

static const uint8_t MAC_A[6] = { 0x00, 0x50, 0x56, 0x00, 0x00, 0x0a };
static const uint8_t MAC_B[6] = { 0x00, 0x50, 0x56, 0x00, 0x00, 0x0b };
static const uint8_t MAC_C[6] = { 0x00, 0x50, 0x56, 0x00, 0x00, 0x0c };
static const uint8_t MAC_X[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x99 };
static const uint8_t BCAST[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static uint64_t fake_now;

static uint64_t
fake_clock(void *ctx)
{
    return fake_now;
}

/* Build a frame: tag 0 = untagged; returns its length. */
static size_t
mkframe(uint8_t *b, const uint8_t *dst, const uint8_t *src, uint16_t tag,
        size_t payload, uint8_t fill)
{
    size_t o = 0;
    memcpy(b, dst, 6);
    memcpy(b + 6, src, 6);
    o = 12;
    if (tag) {
        b[o++] = 0x81;
        b[o++] = 0x00;
        b[o++] = (uint8_t)(tag >> 8);
        b[o++] = (uint8_t)tag;
    }
    b[o++] = 0x88;
    b[o++] = 0xb5;
    memset(b + o, fill, payload);
    return o + payload;
}

struct fx {
    struct vs_switch *sw;
};

static struct vs_switch *
mksw(unsigned mtu)
{
    struct vs_switch_opts o = { .name = "vSwitch0", .mtu = mtu, .mac_age_sec = 300 };
    struct vs_switch *sw;
    assert_int_equal(vs_create(&o, &sw), 0);
    fake_now = 1000000000ull;
    vs_set_clock(sw, fake_clock, NULL);
    return sw;
}

static void
add_pg(struct vs_switch *sw, const char *name, uint16_t vlan)
{
    struct vs_pg_config c;
    vs_pg_config_default(&c, false);
    c.vlan = vlan;
    assert_int_equal(vs_pg_add(sw, name, &c), 0);
}

static struct vs_port *
add_port(struct vs_switch *sw, const char *name, const char *pg, const uint8_t *mac)
{
    struct vs_port *p;
    assert_int_equal(vs_port_add_dummy(sw, name, pg, mac, &p), 0);
    return p;
}

static void
run(struct vs_switch *sw)
{
    while (vs_run_once(sw) > 0)
        ;
}

/* Drain a port; returns number of frames, last frame in buf. */
static int
drain(struct vs_port *p, uint8_t *buf, int *lastlen)
{
    int n = 0, l;
    uint8_t tmp[VS_FRAME_MAX + 8];
    while ((l = vs_dummy_recv(p, buf ? buf : tmp, VS_FRAME_MAX + 8)) >= 0) {
        n++;
        if (lastlen)
            *lastlen = l;
    }
    return n;
}

static void
test_defaults_are_esxi(void **state)
{
    struct vs_pg_config c;
    vs_pg_config_default(&c, false);
    assert_false(c.security.allow_promiscuous);
    assert_true(c.security.allow_mac_changes);
    assert_true(c.security.allow_forged_transmits);
    vs_pg_config_default(&c, true);
    assert_false(c.security.allow_promiscuous);
    assert_false(c.security.allow_mac_changes);
    assert_false(c.security.allow_forged_transmits);
}

static void
test_two_ports_reach_each_other(void **state)
{
    struct vs_switch *sw = mksw(0);
    add_pg(sw, "VM Network", 0);
    struct vs_port *a = add_port(sw, "a", "VM Network", MAC_A);
    struct vs_port *b = add_port(sw, "b", "VM Network", MAC_B);
    uint8_t f[2048], r[2048];
    size_t n = mkframe(f, BCAST, MAC_A, 0, 46, 1);
    assert_int_equal(vs_dummy_inject(a, f, n), 0);
    run(sw);
    assert_int_equal(vs_dummy_recv(b, r, sizeof r), (int)n);
    assert_memory_equal(r, f, n);
    assert_int_equal(vs_dummy_pending(a), 0);   /* no echo to the sender */
    n = mkframe(f, MAC_A, MAC_B, 0, 100, 2);
    vs_dummy_inject(b, f, n);
    run(sw);
    assert_int_equal(vs_dummy_recv(a, r, sizeof r), (int)n);
    assert_memory_equal(r, f, n);
    char name[64];
    assert_int_equal(vs_mac_lookup(sw, 0, MAC_A, name, sizeof name), 0);
    assert_string_equal(name, "a");
    vs_destroy(sw);
}

static void
test_vlans_isolated_and_flood_confined(void **state)
{
    struct vs_switch *sw = mksw(0);
    add_pg(sw, "v10", 10);
    add_pg(sw, "v20", 20);
    struct vs_port *a = add_port(sw, "a", "v10", MAC_A);
    struct vs_port *b = add_port(sw, "b", "v20", MAC_B);
    struct vs_port *c = add_port(sw, "c", "v10", NULL);
    struct vs_port *d = add_port(sw, "d", "v20", NULL);
    uint8_t f[2048];
    /* broadcast, unknown unicast and unicast to B's MAC from VLAN 10 */
    size_t n = mkframe(f, BCAST, MAC_A, 0, 46, 1);
    vs_dummy_inject(a, f, n);
    n = mkframe(f, MAC_X, MAC_A, 0, 46, 1);
    vs_dummy_inject(a, f, n);
    n = mkframe(f, MAC_B, MAC_A, 0, 46, 1);
    vs_dummy_inject(a, f, n);
    run(sw);
    assert_int_equal(drain(b, NULL, NULL), 0);
    assert_int_equal(drain(d, NULL, NULL), 0);
    assert_int_equal(drain(c, NULL, NULL), 3);  /* MAC-less port: all flooded */
    /* B learned in VLAN 20 does not make A's frame cross. */
    n = mkframe(f, BCAST, MAC_B, 0, 46, 1);
    vs_dummy_inject(b, f, n);
    run(sw);
    assert_int_equal(drain(a, NULL, NULL), 0);
    assert_int_equal(drain(d, NULL, NULL), 1);
    n = mkframe(f, MAC_B, MAC_A, 0, 46, 1);
    vs_dummy_inject(a, f, n);
    run(sw);
    assert_int_equal(drain(b, NULL, NULL), 0);
    /* An access port may not send tagged frames. */
    n = mkframe(f, BCAST, MAC_A, 20, 46, 1);
    vs_dummy_inject(a, f, n);
    run(sw);
    assert_int_equal(drain(b, NULL, NULL), 0);
    struct vs_stats s;
    vs_port_stats(a, &s);
    assert_int_equal(s.drops[VS_DROP_VLAN], 1);
    vs_destroy(sw);
}

static void
test_trunk_sees_tags(void **state)
{
    struct vs_switch *sw = mksw(0);
    add_pg(sw, "v10", 10);
    add_pg(sw, "v20", 20);
    add_pg(sw, "trunk", VS_VLAN_TRUNK);
    struct vs_port *a = add_port(sw, "a", "v10", MAC_A);
    struct vs_port *b = add_port(sw, "b", "v20", MAC_B);
    struct vs_port *t = add_port(sw, "t", "trunk", NULL);
    uint8_t f[2048], r[2048], want[2048];
    size_t n = mkframe(f, BCAST, MAC_A, 0, 46, 7);
    vs_dummy_inject(a, f, n);
    run(sw);
    int l = vs_dummy_recv(t, r, sizeof r);
    size_t wn = mkframe(want, BCAST, MAC_A, 10, 46, 7);
    assert_int_equal(l, (int)wn);
    assert_memory_equal(r, want, wn);
    /* Trunk sends into VLAN 20 with a tag; B receives it untagged. */
    n = mkframe(f, MAC_B, MAC_C, 20, 60, 8);
    vs_dummy_inject(t, f, n);
    run(sw);
    l = vs_dummy_recv(b, r, sizeof r);
    wn = mkframe(want, MAC_B, MAC_C, 0, 60, 8);
    assert_int_equal(l, (int)wn);
    assert_memory_equal(r, want, wn);
    assert_int_equal(drain(a, NULL, NULL), 0);
    /* Answer from B reaches the trunk, tagged 20, as known unicast. */
    n = mkframe(f, MAC_C, MAC_B, 0, 60, 9);
    vs_dummy_inject(b, f, n);
    run(sw);
    l = vs_dummy_recv(t, r, sizeof r);
    wn = mkframe(want, MAC_C, MAC_B, 20, 60, 9);
    assert_int_equal(l, (int)wn);
    assert_memory_equal(r, want, wn);
    assert_int_equal(drain(a, NULL, NULL), 0);
    /* VID 4095 is reserved. */
    n = mkframe(f, BCAST, MAC_C, 4095, 60, 9);
    vs_dummy_inject(t, f, n);
    run(sw);
    struct vs_stats s;
    vs_port_stats(t, &s);
    assert_int_equal(s.drops[VS_DROP_VLAN], 1);
    vs_destroy(sw);
}

static void
test_promiscuous_policy(void **state)
{
    struct vs_switch *sw = mksw(0);
    add_pg(sw, "pg", 5);
    struct vs_port *a = add_port(sw, "a", "pg", MAC_A);
    struct vs_port *b = add_port(sw, "b", "pg", MAC_B);
    struct vs_port *c = add_port(sw, "c", "pg", MAC_C);
    uint8_t f[2048];
    size_t n;
    /* B announces itself, then A sends to B. */
    n = mkframe(f, BCAST, MAC_B, 0, 46, 1);
    vs_dummy_inject(b, f, n);
    run(sw);
    drain(a, NULL, NULL);
    drain(c, NULL, NULL);
    n = mkframe(f, MAC_B, MAC_A, 0, 46, 1);
    vs_dummy_inject(a, f, n);
    n = mkframe(f, MAC_X, MAC_A, 0, 46, 1);     /* unknown unicast */
    vs_dummy_inject(a, f, n);
    run(sw);
    assert_int_equal(drain(b, NULL, NULL), 1);
    assert_int_equal(drain(c, NULL, NULL), 0);  /* reject: only its own */
    struct vs_pg_config cfg;
    assert_int_equal(vs_pg_get(sw, "pg", &cfg), 0);
    cfg.security.allow_promiscuous = true;
    assert_int_equal(vs_pg_update(sw, "pg", &cfg), 0);
    n = mkframe(f, MAC_B, MAC_A, 0, 46, 1);
    vs_dummy_inject(a, f, n);
    n = mkframe(f, MAC_X, MAC_A, 0, 46, 1);
    vs_dummy_inject(a, f, n);
    run(sw);
    assert_int_equal(drain(b, NULL, NULL), 2);  /* promiscuous too now */
    assert_int_equal(drain(c, NULL, NULL), 2);
    vs_destroy(sw);
}

static void
test_forged_transmits_and_mac_changes(void **state)
{
    struct vs_switch *sw = mksw(0);
    struct vs_pg_config cfg;
    vs_pg_config_default(&cfg, false);
    cfg.security.allow_forged_transmits = false;
    cfg.security.allow_mac_changes = false;
    assert_int_equal(vs_pg_add(sw, "secure", &cfg), 0);
    struct vs_port *a = add_port(sw, "a", "secure", MAC_A);
    struct vs_port *b = add_port(sw, "b", "secure", MAC_B);
    uint8_t f[2048];
    size_t n = mkframe(f, BCAST, MAC_X, 0, 46, 1);     /* forged source */
    vs_dummy_inject(a, f, n);
    run(sw);
    assert_int_equal(drain(b, NULL, NULL), 0);
    struct vs_stats s;
    vs_port_stats(a, &s);
    assert_int_equal(s.drops[VS_DROP_FORGED], 1);
    assert_int_equal(vs_pg_stats(sw, "secure", &s), 0);
    assert_int_equal(s.drops[VS_DROP_FORGED], 1);
    /* B changes its MAC: inbound frames stop until it changes it back. */
    assert_int_equal(vs_port_set_mac(b, MAC_C), 0);
    n = mkframe(f, BCAST, MAC_A, 0, 46, 1);
    vs_dummy_inject(a, f, n);
    run(sw);
    assert_int_equal(drain(b, NULL, NULL), 0);
    vs_port_stats(b, &s);
    assert_int_equal(s.drops[VS_DROP_MAC_CHANGE], 1);
    vs_port_set_mac(b, MAC_B);
    vs_dummy_inject(a, f, n);
    run(sw);
    assert_int_equal(drain(b, NULL, NULL), 1);
    /* Accept both: forged source passes, changed MAC receives. */
    cfg.security.allow_forged_transmits = true;
    cfg.security.allow_mac_changes = true;
    assert_int_equal(vs_pg_update(sw, "secure", &cfg), 0);
    vs_port_set_mac(b, MAC_C);
    n = mkframe(f, BCAST, MAC_X, 0, 46, 1);
    vs_dummy_inject(a, f, n);
    n = mkframe(f, MAC_C, MAC_A, 0, 46, 1);
    vs_dummy_inject(a, f, n);
    run(sw);
    assert_int_equal(drain(b, NULL, NULL), 2);
    vs_destroy(sw);
}

static void
test_mac_learning_and_aging(void **state)
{
    struct vs_switch *sw = mksw(0);
    add_pg(sw, "pg", 0);
    struct vs_port *a = add_port(sw, "a", "pg", NULL);
    struct vs_port *b = add_port(sw, "b", "pg", NULL);
    struct vs_port *c = add_port(sw, "c", "pg", NULL);
    uint8_t f[2048];
    char name[64];
    size_t n = mkframe(f, BCAST, MAC_X, 0, 46, 1);
    vs_dummy_inject(a, f, n);
    run(sw);
    assert_int_equal(drain(b, NULL, NULL), 1);
    assert_int_equal(drain(c, NULL, NULL), 1);
    assert_int_equal(vs_mac_lookup(sw, 0, MAC_X, name, sizeof name), 0);
    assert_string_equal(name, "a");
    assert_int_equal(vs_mac_lookup(sw, 7, MAC_X, name, sizeof name), -ENOENT);
    /* Known now: unicast to X goes to a only. */
    n = mkframe(f, MAC_X, MAC_B, 0, 46, 1);
    vs_dummy_inject(b, f, n);
    run(sw);
    assert_int_equal(drain(a, NULL, NULL), 1);
    assert_int_equal(drain(c, NULL, NULL), 0);
    /* X moves to c. */
    n = mkframe(f, BCAST, MAC_X, 0, 46, 1);
    vs_dummy_inject(c, f, n);
    run(sw);
    drain(a, NULL, NULL);
    drain(b, NULL, NULL);
    assert_int_equal(vs_mac_lookup(sw, 0, MAC_X, name, sizeof name), 0);
    assert_string_equal(name, "c");
    /* Ages out after 300 s: unicast to X floods again. */
    fake_now += 301ull * 1000000000ull;
    assert_int_equal(vs_mac_lookup(sw, 0, MAC_X, name, sizeof name), -ENOENT);
    n = mkframe(f, MAC_X, MAC_B, 0, 46, 1);
    vs_dummy_inject(b, f, n);
    run(sw);
    assert_int_equal(drain(a, NULL, NULL), 1);
    assert_int_equal(drain(c, NULL, NULL), 1);
    /* Removing a port forgets what was learned on it. */
    n = mkframe(f, BCAST, MAC_X, 0, 46, 1);
    vs_dummy_inject(a, f, n);
    run(sw);
    assert_int_equal(vs_mac_lookup(sw, 0, MAC_X, name, sizeof name), 0);
    assert_int_equal(vs_port_remove(sw, a), 0);
    assert_int_equal(vs_mac_lookup(sw, 0, MAC_X, name, sizeof name), -ENOENT);
    vs_destroy(sw);
}

static void
test_mac_table_full(void **state)
{
    struct vs_switch_opts o = { .mac_table_max = 4 };
    struct vs_switch *sw;
    assert_int_equal(vs_create(&o, &sw), 0);
    add_pg(sw, "pg", 0);
    struct vs_port *a = add_port(sw, "a", "pg", NULL);
    struct vs_port *b = add_port(sw, "b", "pg", NULL);
    uint8_t f[2048], m[6] = { 2, 0, 0, 0, 0, 0 };
    for (int i = 1; i <= 10; i++) {
        m[5] = (uint8_t)i;
        vs_dummy_inject(a, f, mkframe(f, BCAST, m, 0, 46, 1));
    }
    run(sw);
    assert_int_equal(vs_mac_count(sw), 4);
    assert_int_equal(drain(b, NULL, NULL), 10);     /* still forwarded */
    vs_destroy(sw);
}

static void
test_shaping_caps_flood(void **state)
{
    struct vs_switch *sw = mksw(0);
    struct vs_pg_config cfg;
    vs_pg_config_default(&cfg, false);
    cfg.shaping.enabled = true;
    cfg.shaping.average_bps = 8000000;          /* 1 MB/s */
    cfg.shaping.peak_bps = 80000000000ull;      /* not the limit here */
    cfg.shaping.burst_bytes = 100000;
    assert_int_equal(vs_pg_add(sw, "shaped", &cfg), 0);
    add_pg(sw, "free", 1);
    struct vs_port *a = add_port(sw, "a", "shaped", MAC_A);
    struct vs_port *b = add_port(sw, "b", "shaped", MAC_B);
    struct vs_port *c = add_port(sw, "c", "free", MAC_C);
    struct vs_port *d = add_port(sw, "d", "free", NULL);
    uint8_t f[2048];
    size_t n = mkframe(f, BCAST, MAC_A, 0, 986, 1);    /* 1000 bytes */
    assert_int_equal(n, 1000);
    /* A flood of 1000 frames with the clock stopped: exactly the burst. */
    for (int i = 0; i < 1000; i++)
        vs_dummy_inject(a, f, n);
    run(sw);
    assert_int_equal(drain(b, NULL, NULL), 100);
    struct vs_stats s;
    vs_port_stats(a, &s);
    assert_int_equal(s.rx_bytes, 100000);
    assert_int_equal(s.drops[VS_DROP_SHAPED], 900);
    /* 250 ms later: 250 KB of average rate... capped at the 100 KB burst. */
    fake_now += 250000000ull;
    for (int i = 0; i < 1000; i++)
        vs_dummy_inject(a, f, n);
    run(sw);
    assert_int_equal(drain(b, NULL, NULL), 100);
    /* 50 ms: 50 KB. */
    fake_now += 50000000ull;
    for (int i = 0; i < 1000; i++)
        vs_dummy_inject(a, f, n);
    run(sw);
    assert_int_equal(drain(b, NULL, NULL), 50);
    /* The unshaped group next to it is unaffected. */
    n = mkframe(f, BCAST, MAC_C, 0, 986, 1);
    for (int i = 0; i < 1000; i++)
        vs_dummy_inject(c, f, n);
    run(sw);
    assert_int_equal(drain(d, NULL, NULL), 1000);
    /* Peak rate limits too: peak = average, 1 ms of peak = 1000 bytes. */
    cfg.shaping.peak_bps = 8000000;
    cfg.shaping.burst_bytes = 1000000;
    assert_int_equal(vs_pg_update(sw, "shaped", &cfg), 0);
    fake_now += 10000000000ull;
    n = mkframe(f, BCAST, MAC_A, 0, 986, 1);
    for (int i = 0; i < 100; i++)
        vs_dummy_inject(a, f, n);
    run(sw);
    assert_int_equal(drain(b, NULL, NULL), 1);      /* peak depth: 1518 B */
    /* Bad shaping configs are refused. */
    cfg.shaping.peak_bps = 1;
    assert_int_equal(vs_pg_update(sw, "shaped", &cfg), -EINVAL);
    vs_destroy(sw);
}

static void
test_counters(void **state)
{
    struct vs_switch *sw = mksw(0);
    add_pg(sw, "pg", 0);
    struct vs_port *a = add_port(sw, "a", "pg", MAC_A);
    struct vs_port *b = add_port(sw, "b", "pg", MAC_B);
    uint8_t f[2048];
    for (int i = 0; i < 7; i++)
        vs_dummy_inject(a, f, mkframe(f, MAC_B, MAC_A, 0, 86, 1));
    vs_dummy_inject(a, f, 5);                   /* runt */
    run(sw);
    struct vs_stats s;
    vs_port_stats(a, &s);
    assert_int_equal(s.rx_packets, 7);
    assert_int_equal(s.rx_bytes, 700);
    assert_int_equal(s.drops[VS_DROP_RUNT], 1);
    assert_int_equal(vs_stats_drops_total(&s), 1);
    vs_port_stats(b, &s);
    assert_int_equal(s.tx_packets, 7);
    assert_int_equal(s.tx_bytes, 700);
    vs_pg_stats(sw, "pg", &s);
    assert_int_equal(s.rx_packets, 7);
    assert_int_equal(s.tx_packets, 7);
    assert_int_equal(s.drops[VS_DROP_RUNT], 1);
    assert_int_equal(vs_pg_stats(sw, "nope", &s), -ENOENT);
    assert_string_equal(vs_drop_name(VS_DROP_SHAPED), "shaped");
    vs_destroy(sw);
}

static void
test_mtu(void **state)
{
    struct vs_switch *sw = mksw(0);
    add_pg(sw, "pg", 0);
    struct vs_port *a = add_port(sw, "a", "pg", MAC_A);
    struct vs_port *b = add_port(sw, "b", "pg", MAC_B);
    static uint8_t f[VS_FRAME_MAX + 100];
    vs_dummy_inject(a, f, mkframe(f, MAC_B, MAC_A, 0, 1500, 1));
    vs_dummy_inject(a, f, mkframe(f, MAC_B, MAC_A, 0, 1501, 1));
    run(sw);
    assert_int_equal(drain(b, NULL, NULL), 1);
    struct vs_stats s;
    vs_port_stats(a, &s);
    assert_int_equal(s.drops[VS_DROP_OVERSIZE], 1);
    assert_int_equal(vs_set_mtu(sw, 9001), -EINVAL);
    assert_int_equal(vs_set_mtu(sw, 9000), 0);
    vs_dummy_inject(a, f, mkframe(f, MAC_B, MAC_A, 0, 9000, 1));
    vs_dummy_inject(a, f, mkframe(f, MAC_B, MAC_A, 0, 9001, 1));
    vs_dummy_inject(a, f, sizeof f);            /* giant */
    run(sw);
    int l = 0;
    assert_int_equal(drain(b, NULL, &l), 1);
    assert_int_equal(l, 9014);
    vs_port_stats(a, &s);
    assert_int_equal(s.drops[VS_DROP_OVERSIZE], 3);
    vs_destroy(sw);
}

static void
test_malformed_frames(void **state)
{
    struct vs_switch *sw = mksw(0);
    add_pg(sw, "pg", 0);
    add_pg(sw, "trunk", VS_VLAN_TRUNK);
    struct vs_port *a = add_port(sw, "a", "pg", NULL);
    struct vs_port *t = add_port(sw, "t", "trunk", NULL);
    uint8_t f[64];
    memset(f, 0, sizeof f);
    for (size_t l = 0; l < 14; l++)
        vs_dummy_inject(a, f, l);
    f[12] = 0x81;
    vs_dummy_inject(t, f, 16);                  /* truncated tag */
    vs_dummy_inject(a, f, mkframe(f, BCAST, BCAST, 0, 46, 0));      /* mcast src */
    uint8_t zero[6] = { 0 };
    vs_dummy_inject(a, f, mkframe(f, BCAST, zero, 0, 46, 0));
    run(sw);
    struct vs_stats s;
    vs_port_stats(a, &s);
    assert_int_equal(s.drops[VS_DROP_RUNT], 14);
    assert_int_equal(s.drops[VS_DROP_BAD_SRC], 2);
    vs_port_stats(t, &s);
    assert_int_equal(s.drops[VS_DROP_RUNT], 1);
    assert_int_equal(drain(t, NULL, NULL), 0);
    vs_destroy(sw);
}

static void
test_config_errors(void **state)
{
    struct vs_switch *sw = mksw(0);
    struct vs_pg_config c;
    vs_pg_config_default(&c, true);
    c.vlan = 4096;
    assert_int_equal(vs_pg_add(sw, "x", &c), -EINVAL);
    c.vlan = VS_VLAN_TRUNK;
    c.vni = 5000;
    assert_int_equal(vs_pg_add(sw, "x", &c), -EINVAL);
    c.vlan = 10;
    assert_int_equal(vs_pg_add(sw, "dpg1", &c), 0);
    assert_int_equal(vs_pg_add(sw, "dpg1", &c), -EEXIST);
    c.vlan = 11;                                /* same VNI, other VLAN */
    assert_int_equal(vs_pg_add(sw, "dpg2", &c), -EINVAL);
    c.vlan = 10;
    c.vni = 5001;                               /* same VLAN, other VNI */
    assert_int_equal(vs_pg_add(sw, "dpg2", &c), -EINVAL);
    assert_int_equal(vs_pg_get(sw, "dpg2", &c), -ENOENT);
    assert_int_equal(vs_port_add_dummy(sw, "p", "nope", NULL, NULL), -ENOENT);
    struct vs_port *p;
    assert_int_equal(vs_port_add_dummy(sw, "p", "dpg1", MAC_A, &p), 0);
    assert_int_equal(vs_port_add_dummy(sw, "p", "dpg1", MAC_A, NULL), -EEXIST);
    assert_int_equal(vs_pg_remove(sw, "dpg1"), -EBUSY);
    assert_ptr_equal(vs_port_find(sw, "p"), p);
    assert_string_equal(vs_port_type(p), "dummy");
    assert_int_equal(vs_port_remove(sw, p), 0);
    assert_null(vs_port_find(sw, "p"));
    assert_int_equal(vs_pg_remove(sw, "dpg1"), 0);
    assert_int_equal(vs_pg_remove(sw, "dpg1"), -ENOENT);
    assert_int_equal(vs_vtep_add(sw, 0, "127.0.0.1", 0), -EINVAL);
    assert_int_equal(vs_vtep_add(sw, 7, "not-an-ip", 0), -EINVAL);
    uint8_t m[6];
    assert_int_equal(vs_parse_mac("00:50:56:aa:bb:cc", m), 0);
    assert_int_equal(m[5], 0xcc);
    assert_int_equal(vs_parse_mac("00:50:56:aa:bb", m), -EINVAL);
    vs_destroy(sw);
    vs_destroy(NULL);
}

static void
test_link_down(void **state)
{
    struct vs_switch *sw = mksw(0);
    add_pg(sw, "pg", 0);
    struct vs_port *a = add_port(sw, "a", "pg", MAC_A);
    struct vs_port *b = add_port(sw, "b", "pg", MAC_B);
    uint8_t f[2048];
    vs_port_set_link(b, false);
    vs_dummy_inject(a, f, mkframe(f, BCAST, MAC_A, 0, 46, 1));
    run(sw);
    assert_int_equal(drain(b, NULL, NULL), 0);
    struct vs_stats s;
    vs_port_stats(b, &s);
    assert_int_equal(s.drops[VS_DROP_LINK_DOWN], 1);
    vs_port_set_link(b, true);
    vs_dummy_inject(a, f, mkframe(f, BCAST, MAC_A, 0, 46, 1));
    run(sw);
    assert_int_equal(drain(b, NULL, NULL), 1);
    vs_destroy(sw);
}

/* Threaded: a stream between two ports while the configuration around them
 * churns; every frame must arrive. */
static void
test_live_config_change(void **state)
{
    struct vs_switch *sw;
    assert_int_equal(vs_create(NULL, &sw), 0);
    add_pg(sw, "stream", 100);
    add_pg(sw, "churn", 200);
    struct vs_port *a = add_port(sw, "a", "stream", MAC_A);
    struct vs_port *b = add_port(sw, "b", "stream", MAC_B);
    struct vs_port *c = add_port(sw, "c", "churn", MAC_C);
    assert_int_equal(vs_start(sw), 0);
    assert_int_equal(vs_run_once(sw), -EBUSY);
    uint8_t f[2048];
    const int total = 20000;
    int sent = 0, got = 0;
    struct vs_pg_config cfg;
    vs_pg_config_default(&cfg, false);
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < total / 200; i++, sent++) {
            size_t n = mkframe(f, MAC_B, MAC_A, 0, 46, (uint8_t)sent);
            memcpy(f + 14, &sent, sizeof sent);
            while (vs_dummy_inject(a, f, n) == -ENOBUFS)
                usleep(100);
        }
        char name[32];
        snprintf(name, sizeof name, "tmp%d", round);
        cfg.vlan = (uint16_t)(300 + round);
        assert_int_equal(vs_pg_add(sw, name, &cfg), 0);
        cfg.vlan = (uint16_t)(200 + round % 3);
        cfg.security.allow_promiscuous = round & 1;
        assert_int_equal(vs_pg_update(sw, "churn", &cfg), 0);
        assert_int_equal(vs_port_set_pg(sw, c, round & 1 ? name : "churn"), 0);
        if (round & 1)
            assert_int_equal(vs_port_set_pg(sw, c, "churn"), 0);
        assert_int_equal(vs_pg_remove(sw, name), 0);
        assert_int_equal(vs_set_mtu(sw, round & 1 ? 9000 : 1500), 0);
    }
    /* In-order, no loss: poll until all arrived (deadline 20 s). */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint8_t r[2048];
    while (got < total) {
        int l = vs_dummy_recv(b, r, sizeof r);
        if (l < 0) {
            clock_gettime(CLOCK_MONOTONIC, &t1);
            if (t1.tv_sec - t0.tv_sec > 20)
                break;
            usleep(1000);
            continue;
        }
        int seq;
        memcpy(&seq, r + 14, sizeof seq);
        assert_int_equal(seq, got);
        got++;
    }
    assert_int_equal(got, total);
    struct vs_stats s;
    vs_port_stats(a, &s);
    assert_int_equal(vs_stats_drops_total(&s), 0);
    vs_port_stats(b, &s);
    assert_int_equal(vs_stats_drops_total(&s), 0);
    assert_int_equal(s.tx_packets, (uint64_t)total);
    assert_int_equal(drain(c, NULL, NULL), 0);  /* other VLANs saw nothing */
    vs_stop(sw);
    vs_destroy(sw);
}

int
main(void)
{
    kvc_log_init("test_vswitch");
    kvc_log_set_default_level(KVC_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_esxi),
        cmocka_unit_test(test_two_ports_reach_each_other),
        cmocka_unit_test(test_vlans_isolated_and_flood_confined),
        cmocka_unit_test(test_trunk_sees_tags),
        cmocka_unit_test(test_promiscuous_policy),
        cmocka_unit_test(test_forged_transmits_and_mac_changes),
        cmocka_unit_test(test_mac_learning_and_aging),
        cmocka_unit_test(test_mac_table_full),
        cmocka_unit_test(test_shaping_caps_flood),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_mtu),
        cmocka_unit_test(test_malformed_frames),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_link_down),
        cmocka_unit_test(test_live_config_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
