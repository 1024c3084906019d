/* vpxd's statistics module: takes the samples hosts report (every
 * stats-interval), turns their byte counters into rates, records them with
 * their rollups in the database (db_stats.h) and prunes each level to its
 * retention on a timer.  Event-loop thread only. */
#ifndef VPXD_STATS_H
#define VPXD_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "vpxd/db_stats.h"

struct vpxd;
struct vpxd_stats;
struct hostmgr_stats_sample;

struct vpxd_stats_config {
    int64_t retention_ms[VDB_STATS_LEVELS];     /* 0: the level's default */
    int64_t prune_interval_ms;                   /* 0: 60 s */
};

/* Returns 0 or -errno; *OUT stays NULL on failure (vpxd then runs without
 * stored statistics and says so in the log). */
int vpxd_stats_new(struct vpxd *, const struct vpxd_stats_config *, struct vpxd_stats **out);
void vpxd_stats_free(struct vpxd_stats *);          /* NULL is fine */

/* One StatsBatch of HOST_ID: the host's sample and its VMs'.  Samples of VMs
 * not (yet) in the inventory are dropped. */
void vpxd_stats_record(struct vpxd_stats *, const char *host_id,
                       const struct hostmgr_stats_sample *s, size_t n);

/* Prune now (the timer does it every prune interval); returns rows deleted. */
int vpxd_stats_prune(struct vpxd_stats *);

#endif
