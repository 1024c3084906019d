/* Small file helpers (vmx_fs.h). */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmkernel-kvm/vmx_fs.h"

int vmx_copy_tail(int in, int out, uint64_t *off)
{
    uint8_t buf[16384];
    for (;;) {
        ssize_t r = pread(in, buf, sizeof(buf), (off_t)*off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            return 0;
        for (ssize_t w = 0; w < r;) {
            ssize_t k = write(out, buf + w, (size_t)(r - w));
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0)
                return k < 0 ? -errno : -EIO;
            w += k;
        }
        *off += (uint64_t)r;
    }
}

bool vmx_same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev
        && sa.st_ino == sb.st_ino;
}
