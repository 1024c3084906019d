/* Fuzz target: a hostile VM on a ring port and hostile frames on dummy
 * ports, through the whole switch (ring consumer, frame parser, VLAN and
 * policy paths, MAC learning), plus the VXLAN header parser.
 *
 * Input: u32 tx-prod offset, u32 rx-cons value, u8 flags, then records of
 * [u16 length as written into the slot][u16 bytes that follow][bytes]. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "port.h"
#include "ring.h"
#include "vswitch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vs_switch *sw;
static struct vs_port *ring, *trunk, *access, *promisc;
static struct kvc_ring_region guest;

static void
setup(void)
{
    static const uint8_t mac[6] = { 0x00, 0x50, 0x56, 0x00, 0x00, 0x01 };
    kvc_log_set_default_level(KVC_LOG_OFF);
    struct vs_switch_opts o = { .mtu = 9000, .mac_table_max = 64 };
    if (vs_create(&o, &sw))
        abort();
    struct vs_pg_config c;
    vs_pg_config_default(&c, true);
    c.vlan = 10;
    c.vni = 5000;
    c.shaping.enabled = true;
    c.shaping.average_bps = 1000000;
    c.shaping.peak_bps = 2000000;
    c.shaping.burst_bytes = 20000;
    vs_pg_add(sw, "dpg", &c);
    vs_pg_config_default(&c, false);
    c.vlan = VS_VLAN_TRUNK;
    c.security.allow_promiscuous = true;
    vs_pg_add(sw, "trunk", &c);
    c.vlan = 10;
    vs_pg_add(sw, "v10", &c);
    struct vs_ring_opts ro = { .nslots = 16, .slot_size = 2048 };
    if (vs_port_add_ring(sw, "ring", "dpg", mac, &ro, &ring)
        || vs_port_add_dummy(sw, "trunk", "trunk", NULL, &trunk)
        || vs_port_add_dummy(sw, "access", "dpg", mac, &access)
        || vs_port_add_dummy(sw, "promisc", "v10", NULL, &promisc))
        abort();
    int memfd;
    vs_port_ring_fds(ring, &memfd, NULL, NULL);
    if (kvc_ring_region_map(memfd, &guest))
        abort();
}

static uint32_t
rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!sw)
        setup();
    uint32_t vni;
    vs_vxlan_decap(data, size, &vni);
    if (size < 9)
        return 0;
    uint32_t prod_off = rd32(data), rx_cons = rd32(data + 4);
    uint8_t flags = data[8];
    const uint8_t *p = data + 9, *end = data + size;
    uint32_t cons = __atomic_load_n(&guest.tx.ctl->cons, __ATOMIC_ACQUIRE);
    unsigned slot = 0;
    while (end - p >= 4) {
        uint32_t slen = (uint32_t)p[0] | (uint32_t)p[1] << 8;
        uint32_t n = (uint32_t)p[2] | (uint32_t)p[3] << 8;
        p += 4;
        if (n > (uint32_t)(end - p))
            n = (uint32_t)(end - p);
        struct kvc_ring_slot *s = kvc_ring_slot(&guest.tx, cons + slot);
        uint32_t cap = kvc_ring_slot_cap(&guest.tx);
        memcpy(s->data, p, n < cap ? n : cap);
        s->len = (flags & 1) ? slen : n;
        struct vs_port *d = (flags & 2) ? trunk : (flags & 4) ? access : promisc;
        vs_dummy_inject(d, p, n);
        p += n;
        slot++;
    }
    __atomic_store_n(&guest.tx.ctl->prod, cons + ((flags & 8) ? prod_off : slot),
                     __ATOMIC_RELEASE);
    if (flags & 16)
        __atomic_store_n(&guest.rx.ctl->cons, rx_cons, __ATOMIC_RELEASE);
    else
        __atomic_store_n(&guest.rx.ctl->cons,
                         __atomic_load_n(&guest.rx.ctl->prod, __ATOMIC_ACQUIRE),
                         __ATOMIC_RELEASE);
    if (flags & 32)
        vs_set_mtu(sw, 68 + (prod_off % 8933));
    for (int i = 0; i < 64 && vs_run_once(sw) > 0; i++)
        ;
    /* Keep memory bounded between inputs. */
    uint8_t buf[VS_FRAME_MAX + 8];
    struct vs_port *ports[] = { trunk, access, promisc };
    for (int i = 0; i < 3; i++)
        while (vs_dummy_recv(ports[i], buf, sizeof buf) >= 0)
            ;
    return 0;
}
