/* Replays a fuzz target's corpus without libFuzzer: one TAP test per input.
 * With no arguments it reads $KVC_SRCDIR/tests/fuzz/corpus/KVC_FUZZ_NAME/;
 * otherwise each argument is a file or a directory of inputs.  A crash or a
 * sanitizer report fails the run. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct list {
    char **v;
    size_t n, cap;
};

static void
add(struct list *l, const char *path)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        if (!l->v)
            abort();
    }
    l->v[l->n++] = strdup(path);
}

static int
cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
collect(struct list *l, const char *path)
{
    struct stat st;
    DIR *d;
    struct dirent *e;
    char buf[4096];

    if (stat(path, &st) < 0) {
        printf("Bail out! cannot open %s\n", path);
        exit(1);
    }
    if (!S_ISDIR(st.st_mode)) {
        add(l, path);
        return;
    }
    if (!(d = opendir(path))) {
        printf("Bail out! cannot open %s\n", path);
        exit(1);
    }
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(buf, sizeof buf, "%s/%s", path, e->d_name);
        add(l, buf);
    }
    closedir(d);
}

int
main(int argc, char **argv)
{
    struct list l = { 0 };
    size_t i;
    int a;

    if (argc < 2) {
        const char *src = getenv("KVC_SRCDIR");
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", src ? src : ".", KVC_FUZZ_NAME);
        collect(&l, dir);
    }
    for (a = 1; a < argc; a++)
        collect(&l, argv[a]);
    qsort(l.v, l.n, sizeof *l.v, cmp);
    printf("1..%zu\n", l.n);
    fflush(stdout);
    for (i = 0; i < l.n; i++) {
        FILE *f = fopen(l.v[i], "rb");
        uint8_t *buf = NULL;
        size_t len = 0, cap = 0, n;
        if (!f) {
            printf("not ok %zu - %s: cannot open\n", i + 1, l.v[i]);
            continue;
        }
        do {
            if (cap - len < 65536) {
                cap = cap ? cap * 2 : 65536;
                buf = realloc(buf, cap);
                if (!buf)
                    abort();
            }
            n = fread(buf + len, 1, cap - len, f);
            len += n;
        } while (n > 0);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, len);
        free(buf);
        const char *base = strrchr(l.v[i], '/');
        printf("ok %zu - %s %s\n", i + 1, KVC_FUZZ_NAME, base ? base + 1 : l.v[i]);
        fflush(stdout);
        free(l.v[i]);
    }
    free(l.v);
    return 0;
}
