/* The vSwitch fuzz target (tests/fuzz/fuzz_vswitch_ring.c) fed a fixed-seed
 * stream of generated inputs, so every `make check` (plain and ASan) pushes
 * thousands of hostile ring states and frames through the switch, beyond
 * the committed corpus that replay_vswitch_ring replays. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint32_t
next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

static void
test_generated_inputs_survive(void **state)
{
    static uint8_t in[4096];
    for (int i = 0; i < 3000; i++) {
        size_t n = 9 + next() % (sizeof in - 9);
        for (size_t k = 0; k < n; k++)
            in[k] = (uint8_t)next();
        if (i % 3 == 0) {
            /* A record with a sane length and an Ethernet-looking header:
             * broadcast or unicast, sometimes tagged. */
            in[9] = 60; in[10] = 0; in[11] = 60; in[12] = 0;
            in[13] = (i & 4) ? 0xff : 0x00;
            in[19] &= 0xfe;
            if (i & 8) {
                in[25] = 0x81;
                in[26] = 0x00;
            }
        }
        assert_int_equal(LLVMFuzzerTestOneInput(in, n), 0);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_inputs_survive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
