/* Fuzz target: the disk records of a live migration that carries the disk
 * (vmkernel-kvm/migrate_disk.c), from a hostile source.  The receiver must
 * refuse or apply every record without touching memory it does not own
 * (ASan checks), write only inside the VM's folder, and leave nothing it
 * created when the stream fails.
 *
 * Input: records, each [0] type (low 2 bits: BEGIN, FILE, DATA, END),
 * [1..4] arg (u32 LE), [5..6] body length (u16 LE), then the body (cut to
 * what is left).  DATA bodies are u64 offset + data, as on the wire.  The
 * first refused record ends the input, as it ends a migration.
 *
 * Each input starts from a new folder holding the placeholder: a 64 KiB
 * empty base `p.img` opened as the VM's disk.  At the end the folder must
 * hold nothing but what the receiver may write (checked). */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "vmkernel-kvm/migrate_disk.h"
#include "vmkernel-kvm/vmx.h"

#define DISK (64 * 1024)

static struct vmx vm;
static char dir[512];
static bool ready;

static void empty_dir(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[1024];
    if (!d)
        return;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
    closedir(d);
}

static void cleanup(void)
{
    empty_dir();
    rmdir(dir);
}

static int setup(void)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/fuzz-xmig-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return -1;
    atexit(cleanup);
    pthread_mutex_init(&vm.dev_lock, NULL);
    kvc_log_set_default_level(KVC_LOG_OFF);
    return 0;
}

static int placeholder(void)
{
    char p[600], err[256];
    empty_dir();
    snprintf(p, sizeof(p), "%s/p.img", dir);
    FILE *f = fopen(p, "w");
    if (!f || ftruncate(fileno(f), DISK) < 0) {
        if (f)
            fclose(f);
        return -1;
    }
    fclose(f);
    memset(&vm.blk.disk, 0, sizeof(vm.blk.disk));
    if (disk_open(&vm.blk.disk, p, false, err, sizeof(err)) < 0)
        return -1;
    vm.blk_on = true;
    return 0;
}

static bool allowed(const char *n)
{
    size_t l = strlen(n);
    return !strcmp(n, "p.img") || !strcmp(n, "p.img.chain")
        || (l > 10 && (!strcmp(n + l - 10, "-delta.img") || !strcmp(n + l - 10, "-delta.map")));
}

static void check_dir(bool failed)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d)
        abort();
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        /* Only disk files; after a failure only the placeholder. */
        if (!allowed(e->d_name) || (failed && strcmp(e->d_name, "p.img"))) {
            fprintf(stderr, "unexpected file %s (failed=%d)\n", e->d_name, failed);
            abort();
        }
    }
    closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready) {
        if (setup() < 0)
            return 0;
        ready = true;
    }
    if (placeholder() < 0)
        return 0;
    struct disk_recv *r = NULL;
    char err[512];
    int rc = 0;
    size_t pos = 0;
    while (pos + 7 <= size && !rc) {
        unsigned type = data[pos] & 3;
        uint32_t arg = (uint32_t)data[pos + 1] | (uint32_t)data[pos + 2] << 8
                     | (uint32_t)data[pos + 3] << 16 | (uint32_t)data[pos + 4] << 24;
        size_t len = (size_t)data[pos + 5] | (size_t)data[pos + 6] << 8;
        pos += 7;
        if (len > size - pos)
            len = size - pos;
        const uint8_t *body = data + pos;
        pos += len;
        /* The body in a buffer of its own size, so ASan sees any overread. */
        uint8_t *b = malloc(len ? len : 1);
        if (!b)
            break;
        memcpy(b, body, len);
        if (type == 0)
            rc = r ? -EPROTO : disk_recv_begin(&vm, &r, b, len, err, sizeof(err));
        else if (!r)
            rc = -EPROTO;
        else if (type == 1)
            rc = disk_recv_file(r, arg, b, len, err, sizeof(err));
        else if (type == 2) {
            if (len <= 8)
                rc = -EPROTO;
            else {
                uint64_t off = 0;
                for (int i = 0; i < 8; i++)
                    off |= (uint64_t)b[i] << (8 * i);
                rc = disk_recv_data(r, arg, off, b + 8, len - 8, err, sizeof(err));
            }
        } else
            rc = disk_recv_end(r, err, sizeof(err));
        free(b);
    }
    bool complete = disk_recv_complete(r);
    disk_recv_free(r, !complete);
    disk_close(&vm.blk.disk);
    check_dir(!complete && r != NULL);
    return 0;
}
