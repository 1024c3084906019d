/* kvc-vswitch: a tiny driver that hosts one vSwitch and takes commands on
 * stdin, one per line, answering one line each ("ok ..." or "err ...").
 * For integration tests and benchmarks until vmkd hosts the library.
 *
 *   mtu N
 *   pg add|update NAME [vlan=N] [vni=N] [dist=0|1] [promisc=0|1]
 *                      [macchg=0|1] [forged=0|1] [avg=BPS peak=BPS burst=BYTES]
 *   pg remove NAME
 *   port add NAME PG [MAC]          (a dummy port)
 *   port tap NAME PG IFNAME [MAC]   (a TAP port: kernel interface IFNAME)
 *   port remove NAME | port pg NAME PG | port mac NAME MAC | port link NAME 0|1
 *   vxlan NAME IP UDPPORT           (the uplink)
 *   vtep add|remove VNI IP UDPPORT
 *   start | stop
 *   inject PORT HEXFRAME
 *   recv PORT TIMEOUT_MS            -> ok HEXFRAME | err EAGAIN
 *   stats PORT | pgstats PG         -> ok key=value ...
 *   mac VLAN MAC                    -> ok PORT | err ENOENT
 *   quit
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "vswitch.h"

static struct vs_switch *sw;

static void
reply_rc(int rc)
{
    if (rc < 0)
        printf("err %s\n", strerrorname_np(-rc) ? strerrorname_np(-rc) : "?");
    else
        printf("ok\n");
}

static int
pg_opts(char **tok, int n, struct vs_pg_config *c)
{
    for (int i = 0; i < n; i++) {
        char *eq = strchr(tok[i], '=');
        if (!eq)
            return -EINVAL;
        *eq = 0;
        const char *k = tok[i];
        char *end;
        unsigned long long v = strtoull(eq + 1, &end, 0);
        if (*end)
            return -EINVAL;
        if (!strcmp(k, "vlan"))
            c->vlan = v > 0xffff ? 0xffff : (uint16_t)v;
        else if (!strcmp(k, "vni"))
            c->vni = v > 0xffffffffu ? 0xffffffffu : (uint32_t)v;
        else if (!strcmp(k, "dist")) {
            struct vs_pg_config d;
            vs_pg_config_default(&d, v != 0);
            c->security = d.security;
        }
        else if (!strcmp(k, "promisc"))
            c->security.allow_promiscuous = v != 0;
        else if (!strcmp(k, "macchg"))
            c->security.allow_mac_changes = v != 0;
        else if (!strcmp(k, "forged"))
            c->security.allow_forged_transmits = v != 0;
        else if (!strcmp(k, "avg"))
            c->shaping.enabled = true, c->shaping.average_bps = v;
        else if (!strcmp(k, "peak"))
            c->shaping.enabled = true, c->shaping.peak_bps = v;
        else if (!strcmp(k, "burst"))
            c->shaping.enabled = true, c->shaping.burst_bytes = v;
        else
            return -EINVAL;
    }
    return 0;
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static struct vs_port *
port(const char *name)
{
    return name ? vs_port_find(sw, name) : NULL;
}

static void
print_stats(const struct vs_stats *s)
{
    printf("ok rx_packets=%llu rx_bytes=%llu tx_packets=%llu tx_bytes=%llu",
           (unsigned long long)s->rx_packets, (unsigned long long)s->rx_bytes,
           (unsigned long long)s->tx_packets, (unsigned long long)s->tx_bytes);
    for (int i = 0; i < VS_DROP__N; i++)
        printf(" drop_%s=%llu", vs_drop_name(i), (unsigned long long)s->drops[i]);
    printf("\n");
}

static void
cmd_recv(struct vs_port *p, long ms)
{
    static uint8_t buf[VS_FRAME_MAX + 8];
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int l = vs_dummy_recv(p, buf, sizeof buf);
        if (l >= 0) {
            printf("ok ");
            for (int i = 0; i < l; i++)
                printf("%02x", buf[i]);
            printf("\n");
            return;
        }
        if (l != -EAGAIN) {
            reply_rc(l);
            return;
        }
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 >= ms) {
            reply_rc(-EAGAIN);
            return;
        }
        usleep(1000);
    }
}

static void
handle(char **tok, int n)
{
    int rc = -EINVAL;
    uint8_t mac[6];
    const char *c = tok[0], *sub = n > 1 ? tok[1] : "";
    if (!strcmp(c, "mtu") && n == 2) {
        rc = vs_set_mtu(sw, (unsigned)atoi(tok[1]));
    } else if (!strcmp(c, "pg") && n >= 3) {
        struct vs_pg_config cfg;
        if (!strcmp(sub, "add")) {
            vs_pg_config_default(&cfg, false);
            if (!(rc = pg_opts(tok + 3, n - 3, &cfg)))
                rc = vs_pg_add(sw, tok[2], &cfg);
        } else if (!strcmp(sub, "update")) {
            if (!(rc = vs_pg_get(sw, tok[2], &cfg)) && !(rc = pg_opts(tok + 3, n - 3, &cfg)))
                rc = vs_pg_update(sw, tok[2], &cfg);
        } else if (!strcmp(sub, "remove")) {
            rc = vs_pg_remove(sw, tok[2]);
        }
    } else if (!strcmp(c, "port") && n >= 3) {
        if (!strcmp(sub, "add") && (n == 4 || n == 5)) {
            rc = n == 5 ? vs_parse_mac(tok[4], mac) : 0;
            if (!rc)
                rc = vs_port_add_dummy(sw, tok[2], tok[3], n == 5 ? mac : NULL, NULL);
        } else if (!strcmp(sub, "tap") && (n == 5 || n == 6)) {
            rc = n == 6 ? vs_parse_mac(tok[5], mac) : 0;
            if (!rc)
                rc = vs_port_add_tap(sw, tok[2], tok[3], tok[4], n == 6 ? mac : NULL, NULL);
        } else if (!strcmp(sub, "remove")) {
            rc = port(tok[2]) ? vs_port_remove(sw, port(tok[2])) : -ENOENT;
        } else if (!strcmp(sub, "pg") && n == 4) {
            rc = port(tok[2]) ? vs_port_set_pg(sw, port(tok[2]), tok[3]) : -ENOENT;
        } else if (!strcmp(sub, "mac") && n == 4) {
            rc = vs_parse_mac(tok[3], mac);
            if (!rc)
                rc = port(tok[2]) ? vs_port_set_mac(port(tok[2]), mac) : -ENOENT;
        } else if (!strcmp(sub, "link") && n == 4) {
            rc = port(tok[2]) ? 0 : -ENOENT;
            if (!rc)
                vs_port_set_link(port(tok[2]), atoi(tok[3]) != 0);
        }
    } else if (!strcmp(c, "vxlan") && n == 4) {
        rc = vs_uplink_add_vxlan(sw, tok[1], tok[2], (uint16_t)atoi(tok[3]), NULL);
    } else if (!strcmp(c, "vtep") && n == 5) {
        uint32_t vni = (uint32_t)strtoul(tok[2], NULL, 0);
        if (!strcmp(sub, "add"))
            rc = vs_vtep_add(sw, vni, tok[3], (uint16_t)atoi(tok[4]));
        else if (!strcmp(sub, "remove"))
            rc = vs_vtep_remove(sw, vni, tok[3], (uint16_t)atoi(tok[4]));
    } else if (!strcmp(c, "start")) {
        rc = vs_start(sw);
    } else if (!strcmp(c, "stop")) {
        vs_stop(sw);
        rc = 0;
    } else if (!strcmp(c, "inject") && n == 3) {
        size_t hl = strlen(tok[2]);
        static uint8_t buf[VS_FRAME_MAX + 64];
        if (hl % 2 || hl / 2 > sizeof buf) {
            rc = -EINVAL;
        } else {
            rc = 0;
            for (size_t i = 0; i < hl / 2 && !rc; i++) {
                int hi = hexval(tok[2][2 * i]), lo = hexval(tok[2][2 * i + 1]);
                if (hi < 0 || lo < 0)
                    rc = -EINVAL;
                else
                    buf[i] = (uint8_t)(hi << 4 | lo);
            }
            if (!rc)
                rc = vs_dummy_inject(port(tok[1]), buf, hl / 2);
        }
    } else if (!strcmp(c, "recv") && n == 3) {
        struct vs_port *p = port(tok[1]);
        if (p) {
            cmd_recv(p, atol(tok[2]));
            return;
        }
        rc = -ENOENT;
    } else if (!strcmp(c, "stats") && n == 2) {
        struct vs_stats s;
        if (!(rc = port(tok[1]) ? vs_port_stats(port(tok[1]), &s) : -ENOENT)) {
            print_stats(&s);
            return;
        }
    } else if (!strcmp(c, "pgstats") && n == 2) {
        struct vs_stats s;
        if (!(rc = vs_pg_stats(sw, tok[1], &s))) {
            print_stats(&s);
            return;
        }
    } else if (!strcmp(c, "mac") && n == 3) {
        char name[VS_NAME_MAX];
        if (!(rc = vs_parse_mac(tok[2], mac))
            && !(rc = vs_mac_lookup(sw, (uint16_t)atoi(tok[1]), mac, name, sizeof name))) {
            printf("ok %s\n", name);
            return;
        }
    }
    reply_rc(rc);
}

int
main(int argc, char **argv)
{
    kvc_log_init("kvc-vswitch");
    struct vs_switch_opts o = { .name = argc > 1 ? argv[1] : "vSwitch0" };
    int rc = vs_create(&o, &sw);
    if (rc) {
        fprintf(stderr, "kvc-vswitch: create: %s\n", strerror(-rc));
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("ready\n");
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, stdin) > 0) {
        char *tok[32];
        int n = 0;
        for (char *s = strtok(line, " \t\r\n"); s && n < 32; s = strtok(NULL, " \t\r\n"))
            tok[n++] = s;
        if (!n)
            continue;
        if (!strcmp(tok[0], "quit"))
            break;
        handle(tok, n);
    }
    free(line);
    vs_destroy(sw);
    return 0;
}
