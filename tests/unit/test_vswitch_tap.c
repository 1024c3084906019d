/* TAP port: the kernel's side of a port group.  Runs in a network namespace
 * of its own (unshare), so nothing touches the host's interfaces; skipped
 * without the privilege for that or without /dev/net/tun. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "vswitch.h"

#define IFNAME "kvcvmk0"

static const char *skip_reason;

static const uint8_t MAC_K[6] = { 0x02, 0x00, 0x00, 0x00, 0x0c, 0x01 };
static const uint8_t MAC_D[6] = { 0x02, 0x00, 0x00, 0x00, 0x0c, 0x02 };

static size_t
mkframe(uint8_t *b, const uint8_t *dst, const uint8_t *src, uint8_t fill)
{
    memcpy(b, dst, 6);
    memcpy(b + 6, src, 6);
    b[12] = 0x88;
    b[13] = 0xb5;
    memset(b + 14, fill, 46);
    return 60;
}

static double
now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void
test_tap_port_both_ways(void **state)
{
    if (skip_reason) {
        print_message("skipping: %s\n", skip_reason);
        skip();
    }
    struct vs_switch *sw;
    assert_int_equal(vs_create(NULL, &sw), 0);
    struct vs_pg_config c;
    vs_pg_config_default(&c, false);
    assert_int_equal(vs_pg_add(sw, "Management Network", &c), 0);
    struct vs_port *d, *t;
    assert_int_equal(vs_port_add_dummy(sw, "d", "Management Network", NULL, &d), 0);
    assert_int_equal(vs_port_add_tap(sw, "vmk0", "Management Network", IFNAME, NULL, &t), 0);
    assert_string_equal(vs_port_type(t), "tap");
    unsigned idx = if_nametoindex(IFNAME);
    assert_true(idx > 0);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr = { 0 };
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, IFNAME);
    assert_int_equal(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
    ifr.ifr_flags |= IFF_UP;
    assert_int_equal(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
    close(s);
    int ps = socket(AF_PACKET, SOCK_RAW, htons(0x88b5));
    assert_true(ps >= 0);
    struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(0x88b5),
                               .sll_ifindex = (int)idx };
    assert_int_equal(bind(ps, (struct sockaddr *)&sll, sizeof sll), 0);
    assert_int_equal(vs_start(sw), 0);

    /* Kernel -> switch -> dummy. */
    uint8_t f[128], r[2048];
    size_t n = mkframe(f, MAC_D, MAC_K, 0x42);
    assert_int_equal(send(ps, f, n, 0), (ssize_t)n);
    double t0 = now();
    int l;
    /* The kernel may send its own frames (IPv6 router solicitations...). */
    while ((l = vs_dummy_recv(d, r, sizeof r)) < 0 || r[12] != 0x88 || r[13] != 0xb5) {
        assert_true(now() - t0 < 10);
        if (l < 0)
            usleep(1000);
    }
    assert_int_equal(l, (int)n);
    assert_memory_equal(r, f, n);

    /* Dummy -> switch -> kernel (received on the interface). */
    n = mkframe(f, MAC_K, MAC_D, 0x43);
    assert_int_equal(vs_dummy_inject(d, f, n), 0);
    bool got = false;
    while (!got) {
        struct pollfd p = { .fd = ps, .events = POLLIN };
        assert_int_equal(poll(&p, 1, 10000), 1);
        struct sockaddr_ll from;
        socklen_t fl = sizeof from;
        ssize_t k = recvfrom(ps, r, sizeof r, 0, (struct sockaddr *)&from, &fl);
        if (k == (ssize_t)n && from.sll_pkttype != PACKET_OUTGOING && !memcmp(r, f, n))
            got = true;
    }
    /* The kernel may hand the frame over before the data path counts it. */
    struct vs_stats st;
    t0 = now();
    for (vs_port_stats(t, &st); st.tx_packets < 1; vs_port_stats(t, &st)) {
        assert_true(now() - t0 < 10);
        usleep(1000);
    }
    assert_true(st.rx_packets >= 1);
    close(ps);
    /* Removing the port removes the interface. */
    assert_int_equal(vs_port_remove(sw, t), 0);
    assert_int_equal(if_nametoindex(IFNAME), 0);
    vs_destroy(sw);
}

static void
test_tap_bad_name(void **state)
{
    if (skip_reason) {
        print_message("skipping: %s\n", skip_reason);
        skip();
    }
    struct vs_switch *sw;
    assert_int_equal(vs_create(NULL, &sw), 0);
    struct vs_pg_config c;
    vs_pg_config_default(&c, false);
    assert_int_equal(vs_pg_add(sw, "pg", &c), 0);
    assert_int_equal(vs_port_add_tap(sw, "x", "pg", "this-name-is-far-too-long", NULL, NULL), -EINVAL);
    assert_int_equal(vs_port_add_tap(sw, "x", "nope", IFNAME, NULL, NULL), -ENOENT);
    assert_int_equal(if_nametoindex(IFNAME), 0);    /* nothing left behind */
    vs_destroy(sw);
}

int
main(void)
{
    kvc_log_init("test_vswitch_tap");
    kvc_log_set_default_level(KVC_LOG_WARN);
    if (access("/dev/net/tun", R_OK | W_OK) != 0)
        skip_reason = "/dev/net/tun not available";
    else if (unshare(CLONE_NEWNET) != 0)
        skip_reason = "cannot create a network namespace (needs CAP_SYS_ADMIN)";
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tap_port_both_ways),
        cmocka_unit_test(test_tap_bad_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
