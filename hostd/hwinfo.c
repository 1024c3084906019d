/* The host's hardware and capacity, as ESXi reports it (summary.hardware):
 * from /proc/cpuinfo, /proc/meminfo and sysinfo(2). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "hostd/hostd.h"

int
hwinfo_read(struct hostd_hw *hw)
{
    char line[512];
    FILE *f;
    unsigned phys_max = 0, cores = 0;
    double mhz = 0;
    struct sysinfo si;

    memset(hw, 0, sizeof *hw);
    hw->threads = (uint32_t)sysconf(_SC_NPROCESSORS_ONLN);
    if ((f = fopen("/proc/cpuinfo", "r"))) {
        while (fgets(line, sizeof line, f)) {
            char *v = strchr(line, ':');
            if (!v)
                continue;
            v++;
            v += strspn(v, " \t");
            v[strcspn(v, "\n")] = 0;
            if (!strncmp(line, "model name", 10) && !hw->cpu_model[0])
                snprintf(hw->cpu_model, sizeof hw->cpu_model, "%s", v);
            else if (!strncmp(line, "cpu MHz", 7) && mhz == 0)
                mhz = atof(v);
            else if (!strncmp(line, "physical id", 11) && (unsigned)atoi(v) + 1 > phys_max)
                phys_max = (unsigned)atoi(v) + 1;
            else if (!strncmp(line, "cpu cores", 9) && cores == 0)
                cores = (unsigned)atoi(v);
        }
        fclose(f);
    }
    hw->sockets = phys_max ? phys_max : 1;
    hw->cores = cores ? cores * hw->sockets : hw->threads;
    if (hw->cores > hw->threads)
        hw->cores = hw->threads;
    hw->mhz = mhz > 0 ? (uint32_t)mhz : 2000;
    if (!hw->cpu_model[0])
        snprintf(hw->cpu_model, sizeof hw->cpu_model, "unknown");
    if ((f = fopen("/proc/meminfo", "r"))) {
        unsigned long long kb;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
                hw->memory_bytes = kb * 1024;
        fclose(f);
    }
    if (!hw->memory_bytes && sysinfo(&si) == 0)
        hw->memory_bytes = (uint64_t)si.totalram * si.mem_unit;
    return hw->memory_bytes ? 0 : -EIO;
}
