/* Runs the vSwitch fuzz target without libFuzzer, so `make check` (plain
 * and ASan) exercises it: every file of tests/fuzz/corpus/vswitch, then a
 * fixed-seed stream of generated inputs.  Prints TAP. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

int
main(int argc, char **argv)
{
    const char *src = getenv("KVC_SRCDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/vswitch", src ? src : ".");
    if (argc > 1)
        snprintf(dir, sizeof dir, "%s", argv[1]);
    int files = 0;
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *de;
        static uint8_t buf[1 << 16];
        while ((de = readdir(d))) {
            if (de->d_name[0] == '.')
                continue;
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
            FILE *f = fopen(path, "rb");
            if (!f)
                continue;
            size_t n = fread(buf, 1, sizeof buf, f);
            fclose(f);
            LLVMFuzzerTestOneInput(buf, n);
            files++;
        }
        closedir(d);
    }
    /* Generated inputs: mostly plausible frames, with hostile lengths and
     * indexes mixed in by the flag byte. */
    static uint8_t in[4096];
    for (int i = 0; i < 3000; i++) {
        size_t n = 9 + next() % (sizeof in - 9);
        for (size_t k = 0; k < n; k++)
            in[k] = (uint8_t)next();
        if (i % 3 == 0) {
            /* A record with a sane length and a broadcast/unicast header. */
            in[9] = 60; in[10] = 0; in[11] = 60; in[12] = 0;
            in[13] = (i & 4) ? 0xff : 0x00;
            in[19] &= 0xfe;
            if (i & 8) { in[25] = 0x81; in[26] = 0x00; }
        }
        LLVMFuzzerTestOneInput(in, n);
    }
    printf("1..1\nok 1 - %d corpus files and 3000 generated inputs survived\n", files);
    return 0;
}
