/* Replays tests/fuzz/corpus/virtq through the fuzz target (plain build, no
 * libFuzzer), so `make check` runs the corpus, under ASan too.  TAP. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv)
{
    const char *src = getenv("KVC_SRCDIR");
    char dir[4096];
    if (argc > 1)
        snprintf(dir, sizeof(dir), "%s", argv[1]);
    else
        snprintf(dir, sizeof(dir), "%s/tests/fuzz/corpus/virtq", src ? src : ".");
    DIR *d = opendir(dir);
    if (!d) {
        printf("1..1\nnot ok 1 - cannot open corpus %s\n", dir);
        return 1;
    }
    struct dirent *de;
    int n = 0, bad = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[8192];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) {
            bad++;
            continue;
        }
        static uint8_t buf[1 << 20];
        size_t len = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        uint8_t *copy = malloc(len ? len : 1);
        if (!copy)
            return 1;
        memcpy(copy, buf, len);
        LLVMFuzzerTestOneInput(copy, len);
        free(copy);
        n++;
    }
    closedir(d);
    printf("1..1\n%s 1 - %d virtq corpus inputs replayed\n", n > 0 && !bad ? "ok" : "not ok", n);
    return n > 0 && !bad ? 0 : 1;
}
