/* vmxctl: talk to one vmx's control socket (operators and tests).
 *
 *   vmxctl -s SOCKET COMMAND [ARG]
 *
 * Commands: info, stats, poweroff, reset, pause, resume, shutdown, reboot,
 * console-read [OFFSET], console-write TEXT, snapshot PATH, suspend PATH,
 * balloon MB, snapshot-delete PATH, disk-info, disk-move DIR, disk-move-status,
 * disk-move-cancel, folder-move DIR, ping.  Prints the reply as
 * `key=value` lines; exits 0 on success, 1 with the error on stderr
 * otherwise. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/rpc.h"
#include "rpc.pb-c.h"
#include "vmx.pb-c.h"

static int timeout_ms = 30000;
static ProtobufCMessage *g_reply;

static void free_reply(void)
{
    if (g_reply)
        protobuf_c_message_free_unpacked(g_reply, NULL);
    g_reply = NULL;
}

static int xfer(int fd, void *buf, size_t n, bool out)
{
    uint8_t *p = buf;
    while (n) {
        struct pollfd pfd = { .fd = fd, .events = out ? POLLOUT : POLLIN };
        if (poll(&pfd, 1, timeout_ms) <= 0)
            return -ETIMEDOUT;
        ssize_t r = out ? write(fd, p, n) : read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? -errno : -ECONNRESET;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static ProtobufCMessage *call(const char *sock, uint32_t method, const ProtobufCMessage *req,
                              const ProtobufCMessageDescriptor *resp_type)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        fprintf(stderr, "vmxctl: connect %s: %s\n", sock, strerror(errno));
        exit(1);
    }
    size_t len = req ? protobuf_c_message_get_packed_size(req) : 0;
    uint8_t *buf = malloc(KVC_RPC_HEADER_SIZE + len + 1);
    struct kvc_rpc_header h = { .flags = 0, .method = method, .request_id = 1, .length = (uint32_t)len };
    kvc_rpc_header_encode(&h, buf);
    if (req)
        protobuf_c_message_pack(req, buf + KVC_RPC_HEADER_SIZE);
    int rc = xfer(fd, buf, KVC_RPC_HEADER_SIZE + len, true);
    free(buf);
    uint8_t hdr[KVC_RPC_HEADER_SIZE];
    /* vmx greets each connection with an empty one-way HELLO; skip it. */
    do {
        if (!rc)
            rc = xfer(fd, hdr, sizeof(hdr), false);
        if (!rc)
            rc = kvc_rpc_header_decode(hdr, sizeof(hdr), 64u << 20, &h);
    } while (!rc && h.method == 0x0002 && (h.flags & KVC_RPC_FLAG_ONEWAY) && h.length == 0);
    if (rc) {
        fprintf(stderr, "vmxctl: %s\n", strerror(-rc));
        exit(1);
    }
    uint8_t *payload = malloc(h.length + 1);
    if (!payload || xfer(fd, payload, h.length, false)) {
        fprintf(stderr, "vmxctl: short reply\n");
        exit(1);
    }
    close(fd);
    if (h.flags & KVC_RPC_FLAG_ERROR) {
        Kvc__Rpc__Error *e = kvc__rpc__error__unpack(NULL, h.length, payload);
        fprintf(stderr, "vmxctl: error %u (%s): %s\n", e ? e->code : 0,
                e ? kvc_rpc_status_name((int)e->code) : "?", e ? e->message : "undecodable");
        if (e)
            kvc__rpc__error__free_unpacked(e, NULL);
        free(payload);
        exit(1);
    }
    ProtobufCMessage *m = protobuf_c_message_unpack(resp_type, NULL, h.length, payload);
    free(payload);
    if (!m) {
        fprintf(stderr, "vmxctl: undecodable reply\n");
        exit(1);
    }
    free_reply();
    g_reply = m;
    return m;
}

static const char *state_name(Kvc__Vmx__RunState s)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&kvc__vmx__run_state__descriptor, s);
    return v ? v->name : "?";
}

static void print_escaped(const char *key, const uint8_t *d, size_t n)
{
    printf("%s=", key);
    for (size_t i = 0; i < n; i++) {
        if (d[i] == '\n')
            printf("\\n");
        else if (d[i] == '\\')
            printf("\\\\");
        else if (d[i] >= 0x20 && d[i] < 0x7f)
            putchar(d[i]);
        else
            printf("\\x%02x", d[i]);
    }
    putchar('\n');
}

int main(int argc, char **argv)
{
    const char *sock = NULL;
    int o;
    while ((o = getopt(argc, argv, "s:t:")) != -1) {
        if (o == 's')
            sock = optarg;
        else if (o == 't')
            timeout_ms = atoi(optarg);
        else
            goto usage;
    }
    if (!sock || optind >= argc)
        goto usage;
    atexit(free_reply);
    const char *cmd = argv[optind];
    const char *arg = optind + 1 < argc ? argv[optind + 1] : NULL;
    Kvc__Vmx__PowerRequest pr = KVC__VMX__POWER_REQUEST__INIT;
    static const struct { const char *name; uint32_t id; } power[] = {
        { "poweroff", KVC__VMX__METHOD__VMX_POWER_OFF }, { "reset", KVC__VMX__METHOD__VMX_RESET },
        { "pause", KVC__VMX__METHOD__VMX_PAUSE }, { "resume", KVC__VMX__METHOD__VMX_RESUME },
        { "shutdown", KVC__VMX__METHOD__VMX_GUEST_SHUTDOWN },
        { "reboot", KVC__VMX__METHOD__VMX_GUEST_REBOOT },
    };
    for (size_t i = 0; i < sizeof(power) / sizeof(power[0]); i++) {
        if (strcmp(cmd, power[i].name))
            continue;
        Kvc__Vmx__StateReply *r = (void *)call(sock, power[i].id, &pr.base,
                                               &kvc__vmx__state_reply__descriptor);
        printf("state=%s\ndetail=%s\n", state_name(r->state), r->detail);
        return 0;
    }
    if (!strcmp(cmd, "ping")) {
        Kvc__Rpc__Ping p = KVC__RPC__PING__INIT;
        p.seq = 7;
        Kvc__Rpc__Ping *r = (void *)call(sock, KVC_RPC_METHOD_PING, &p.base, &kvc__rpc__ping__descriptor);
        printf("seq=%llu\n", (unsigned long long)r->seq);
        return 0;
    }
    if (!strcmp(cmd, "info")) {
        Kvc__Vmx__InfoRequest q = KVC__VMX__INFO_REQUEST__INIT;
        Kvc__Vmx__Info *r = (void *)call(sock, KVC__VMX__METHOD__VMX_INFO, &q.base, &kvc__vmx__info__descriptor);
        printf("name=%s\nuuid=%s\npid=%d\nstate=%s\nmemory_bytes=%llu\nvcpus=%u\nworkload=%s\n"
               "config_path=%s\nrestored=%d\nresets=%u\n", r->name, r->uuid, r->pid,
               state_name(r->state), (unsigned long long)r->memory_bytes, r->vcpus, r->workload,
               r->config_path, r->restored, r->resets);
        return 0;
    }
    if (!strcmp(cmd, "stats")) {
        Kvc__Vmx__StatsRequest q = KVC__VMX__STATS_REQUEST__INIT;
        Kvc__Vmx__Stats *r = (void *)call(sock, KVC__VMX__METHOD__VMX_STATS, &q.base, &kvc__vmx__stats__descriptor);
        printf("state=%s\nuptime_ms=%llu\nmemory_bytes=%llu\nmemory_resident_bytes=%llu\nconsole_bytes=%llu\n"
               "balloon_target_pages=%u\nballoon_actual_pages=%u\n", state_name(r->state),
               (unsigned long long)r->uptime_ms, (unsigned long long)r->memory_bytes,
               (unsigned long long)r->memory_resident_bytes, (unsigned long long)r->console_bytes,
               r->balloon_target_pages, r->balloon_actual_pages);
        for (size_t i = 0; i < r->n_vcpus; i++) {
            Kvc__Vmx__VcpuStats *v = r->vcpus[i];
            printf("vcpu%u.run_time_ns=%llu\nvcpu%u.kvm_runs=%llu\n", v->index,
                   (unsigned long long)v->run_time_ns, v->index, (unsigned long long)v->kvm_runs);
            for (size_t k = 0; k < v->n_exits; k++)
                printf("vcpu%u.exits.%s=%llu\n", v->index, v->exits[k]->reason,
                       (unsigned long long)v->exits[k]->count);
        }
        if (r->tools) {
            Kvc__Vmx__ToolsState *t = r->tools;
            printf("tools.heartbeats=%llu\ntools.heartbeat_age_ms=%lld\ntools.heartbeat_lost=%d\n"
                   "tools.os_name=%s\ntools.ip=%s\ntools.workload=%s\ntools.counter=%llu\n"
                   "tools.checksum=%llu\ntools.state_updates=%llu\n",
                   (unsigned long long)t->heartbeats, (long long)t->heartbeat_age_ms,
                   t->heartbeat_lost, t->os_name, t->ip, t->workload,
                   (unsigned long long)t->counter, (unsigned long long)t->checksum,
                   (unsigned long long)t->state_updates);
        }
        return 0;
    }
    if (!strcmp(cmd, "console-read")) {
        Kvc__Vmx__ConsoleReadRequest q = KVC__VMX__CONSOLE_READ_REQUEST__INIT;
        q.offset = arg ? strtoull(arg, NULL, 10) : 0;
        Kvc__Vmx__ConsoleData *r = (void *)call(sock, KVC__VMX__METHOD__VMX_CONSOLE_READ, &q.base,
                                                &kvc__vmx__console_data__descriptor);
        printf("next_offset=%llu\ntotal=%llu\n", (unsigned long long)r->next_offset,
               (unsigned long long)r->total);
        print_escaped("data", r->data.data, r->data.len);
        return 0;
    }
    if (!strcmp(cmd, "console-write") && arg) {
        Kvc__Vmx__ConsoleWriteRequest q = KVC__VMX__CONSOLE_WRITE_REQUEST__INIT;
        q.data.data = (uint8_t *)arg;
        q.data.len = strlen(arg);
        Kvc__Vmx__ConsoleWriteReply *r = (void *)call(sock, KVC__VMX__METHOD__VMX_CONSOLE_WRITE, &q.base,
                                                      &kvc__vmx__console_write_reply__descriptor);
        printf("accepted=%u\n", r->accepted);
        return 0;
    }
    if ((!strcmp(cmd, "snapshot") || !strcmp(cmd, "suspend")) && arg) {
        Kvc__Vmx__SnapshotRequest q = KVC__VMX__SNAPSHOT_REQUEST__INIT;
        q.path = (char *)arg;
        q.power_off = !strcmp(cmd, "suspend");
        Kvc__Vmx__SnapshotReply *r = (void *)call(sock, KVC__VMX__METHOD__VMX_SNAPSHOT, &q.base,
                                                  &kvc__vmx__snapshot_reply__descriptor);
        printf("path=%s\nbytes=%llu\nmemory_pages=%llu\nduration_us=%llu\nstate=%s\n", r->path,
               (unsigned long long)r->bytes, (unsigned long long)r->memory_pages,
               (unsigned long long)r->duration_us, state_name(r->state));
        return 0;
    }
    if (!strcmp(cmd, "balloon") && arg) {
        Kvc__Vmx__BalloonRequest q = KVC__VMX__BALLOON_REQUEST__INIT;
        q.target_mb = strtoull(arg, NULL, 10);
        Kvc__Vmx__StateReply *r = (void *)call(sock, KVC__VMX__METHOD__VMX_BALLOON, &q.base,
                                               &kvc__vmx__state_reply__descriptor);
        printf("state=%s\ndetail=%s\n", state_name(r->state), r->detail);
        return 0;
    }
    if (!strcmp(cmd, "net-stats") || (!strcmp(cmd, "net-link") && arg)) {
        Kvc__Vmx__NetStatsRequest q = KVC__VMX__NET_STATS_REQUEST__INIT;
        Kvc__Vmx__NetLinkRequest l = KVC__VMX__NET_LINK_REQUEST__INIT;
        l.up = !strcmp(arg ? arg : "", "up");
        Kvc__Vmx__NetStats *r = !strcmp(cmd, "net-stats")
            ? (void *)call(sock, KVC__VMX__METHOD__VMX_NET_STATS, &q.base, &kvc__vmx__net_stats__descriptor)
            : (void *)call(sock, KVC__VMX__METHOD__VMX_NET_SET_LINK, &l.base, &kvc__vmx__net_stats__descriptor);
        /* Every field, key=value, in the order of the message. */
        const ProtobufCMessageDescriptor *d = r->base.descriptor;
        for (unsigned i = 0; i < d->n_fields; i++) {
            const ProtobufCFieldDescriptor *f = &d->fields[i];
            const char *p = (const char *)r + f->offset;
            if (f->type == PROTOBUF_C_TYPE_BOOL)
                printf("%s=%d\n", f->name, *(const protobuf_c_boolean *)p);
            else if (f->type == PROTOBUF_C_TYPE_STRING)
                printf("%s=%s\n", f->name, *(char *const *)p);
            else if (f->type == PROTOBUF_C_TYPE_UINT32)
                printf("%s=%u\n", f->name, *(const uint32_t *)p);
            else if (f->type == PROTOBUF_C_TYPE_UINT64)
                printf("%s=%llu\n", f->name, (unsigned long long)*(const uint64_t *)p);
        }
        return 0;
    }
    if ((!strcmp(cmd, "migrate") && arg) || !strcmp(cmd, "migrate-status")
        || !strcmp(cmd, "migrate-cancel")) {
        /* migrate ADDR [downtime_ms=N] [bandwidth=BYTES_PER_S] [timeout_ms=N]
         *              [max_rounds=N] [verify] [disk] [wait] */
        Kvc__Vmx__MigrateSendRequest q = KVC__VMX__MIGRATE_SEND_REQUEST__INIT;
        Kvc__Vmx__MigrateStatusRequest sq = KVC__VMX__MIGRATE_STATUS_REQUEST__INIT;
        Kvc__Vmx__MigrateStatus *r;
        if (!strcmp(cmd, "migrate")) {
            q.to = (char *)arg;
            for (int i = optind + 2; i < argc; i++) {
                const char *a = argv[i], *eq = strchr(a, '=');
                unsigned long long v = eq ? strtoull(eq + 1, NULL, 10) : 0;
                if (!strcmp(a, "verify"))
                    q.verify = 1;
                else if (!strcmp(a, "disk"))
                    q.with_disk = 1;
                else if (!strcmp(a, "wait"))
                    q.wait = 1;
                else if (!strncmp(a, "downtime_ms=", 12))
                    q.downtime_ms = (uint32_t)v;
                else if (!strncmp(a, "bandwidth=", 10))
                    q.max_bandwidth = v;
                else if (!strncmp(a, "timeout_ms=", 11))
                    q.timeout_ms = (uint32_t)v;
                else if (!strncmp(a, "max_rounds=", 11))
                    q.max_rounds = (uint32_t)v;
                else if (!strncmp(a, "tls_dir=", 8))
                    q.tls_dir = (char *)a + 8;
                else if (!strncmp(a, "peer=", 5))
                    q.peer_thumbprint = (char *)a + 5;
                else
                    goto usage;
            }
            if (q.wait && timeout_ms < 3600000)
                timeout_ms = 3600000;   /* the reply comes when the migration ends */
            r = (void *)call(sock, KVC__VMX__METHOD__VMX_MIGRATE_SEND, &q.base,
                             &kvc__vmx__migrate_status__descriptor);
        } else {
            r = (void *)call(sock, !strcmp(cmd, "migrate-status") ? KVC__VMX__METHOD__VMX_MIGRATE_STATUS
                                                                  : KVC__VMX__METHOD__VMX_MIGRATE_CANCEL,
                             &sq.base, &kvc__vmx__migrate_status__descriptor);
        }
        const ProtobufCEnumValue *ph =
            protobuf_c_enum_descriptor_get_value(&kvc__vmx__migrate_phase__descriptor, r->phase);
        printf("phase=%s\nsource=%d\npeer=%s\nround=%u\npercent=%u\nram_bytes=%llu\n"
               "transferred_bytes=%llu\nremaining_bytes=%llu\ndirty_rate_bps=%llu\n"
               "bandwidth_bps=%llu\nexpected_downtime_ms=%llu\nthrottle_percent=%u\n"
               "downtime_ms=%llu\ndowntime_target_ms=%u\ntotal_ms=%llu\nzero_pages=%llu\n"
               "data_pages=%llu\ndisk_total_bytes=%llu\ndisk_sent_bytes=%llu\nerror=%s\n",
               ph ? ph->name : "?", r->source, r->peer, r->round,
               r->percent, (unsigned long long)r->ram_bytes, (unsigned long long)r->transferred_bytes,
               (unsigned long long)r->remaining_bytes, (unsigned long long)r->dirty_rate_bps,
               (unsigned long long)r->bandwidth_bps, (unsigned long long)r->expected_downtime_ms,
               r->throttle_percent, (unsigned long long)r->downtime_ms, r->downtime_target_ms,
               (unsigned long long)r->total_ms, (unsigned long long)r->zero_pages,
               (unsigned long long)r->data_pages, (unsigned long long)r->disk_total_bytes,
               (unsigned long long)r->disk_sent_bytes, r->error);
        /* wait: the exit status tells the outcome */
        return q.wait && r->phase != KVC__VMX__MIGRATE_PHASE__MIGRATE_COMPLETED ? 1 : 0;
    }
    if (!strcmp(cmd, "snapshot-delete") && arg) {
        Kvc__Vmx__SnapshotDeleteRequest q = KVC__VMX__SNAPSHOT_DELETE_REQUEST__INIT;
        q.path = (char *)arg;
        Kvc__Vmx__SnapshotDeleteReply *r = (void *)call(sock, KVC__VMX__METHOD__VMX_SNAPSHOT_DELETE,
                                                        &q.base, &kvc__vmx__snapshot_delete_reply__descriptor);
        printf("path=%s\nmerged_layer=%s\ninto_layer=%s\nclusters=%llu\ndropped_layer=%d\n"
               "duration_us=%llu\n", r->path, r->merged_layer, r->into_layer,
               (unsigned long long)r->clusters, r->dropped_layer, (unsigned long long)r->duration_us);
        return 0;
    }
    if ((!strcmp(cmd, "disk-move") && arg) || !strcmp(cmd, "disk-move-status")
        || !strcmp(cmd, "disk-move-cancel")) {
        /* disk-move DIR [bandwidth=BYTES_PER_S] [wait] */
        Kvc__Vmx__DiskMoveRequest q = KVC__VMX__DISK_MOVE_REQUEST__INIT;
        Kvc__Vmx__DiskMoveStatusRequest sq = KVC__VMX__DISK_MOVE_STATUS_REQUEST__INIT;
        bool wait = false;
        uint32_t method = !strcmp(cmd, "disk-move") ? KVC__VMX__METHOD__VMX_DISK_MOVE
                        : !strcmp(cmd, "disk-move-status") ? KVC__VMX__METHOD__VMX_DISK_MOVE_STATUS
                        : KVC__VMX__METHOD__VMX_DISK_MOVE_CANCEL;
        if (method == KVC__VMX__METHOD__VMX_DISK_MOVE) {
            q.dest_dir = (char *)arg;
            for (int i = optind + 2; i < argc; i++) {
                if (!strcmp(argv[i], "wait"))
                    wait = true;
                else if (!strncmp(argv[i], "bandwidth=", 10))
                    q.max_bandwidth = strtoull(argv[i] + 10, NULL, 10);
                else
                    goto usage;
            }
        }
        Kvc__Vmx__DiskMoveStatus *r = (void *)call(sock, method, method == KVC__VMX__METHOD__VMX_DISK_MOVE
                                                   ? &q.base : &sq.base, &kvc__vmx__disk_move_status__descriptor);
        /* wait: poll until the move ends (each call is short) */
        for (int n = 0; wait && n < 36000 && r->phase >= KVC__VMX__DISK_MOVE_PHASE__DISK_MOVE_COPYING
                        && r->phase <= KVC__VMX__DISK_MOVE_PHASE__DISK_MOVE_SWITCHING; n++) {
            struct timespec ts = { .tv_sec = 0, .tv_nsec = 50 * 1000 * 1000 };
            nanosleep(&ts, NULL);
            free_reply();
            r = (void *)call(sock, KVC__VMX__METHOD__VMX_DISK_MOVE_STATUS, &sq.base,
                             &kvc__vmx__disk_move_status__descriptor);
        }
        const ProtobufCEnumValue *ph =
            protobuf_c_enum_descriptor_get_value(&kvc__vmx__disk_move_phase__descriptor, r->phase);
        printf("phase=%s\nfrom_path=%s\nto_path=%s\npercent=%u\ntotal_bytes=%llu\ncopied_bytes=%llu\n"
               "dirty_clusters=%llu\nrecopied_clusters=%llu\nrounds=%u\nfiles=%u\npause_us=%llu\n"
               "total_ms=%llu\nerror=%s\n", ph ? ph->name : "?", r->from_path, r->to_path, r->percent,
               (unsigned long long)r->total_bytes, (unsigned long long)r->copied_bytes,
               (unsigned long long)r->dirty_clusters, (unsigned long long)r->recopied_clusters,
               r->rounds, r->files, (unsigned long long)r->pause_us, (unsigned long long)r->total_ms,
               r->error);
        return wait && r->phase != KVC__VMX__DISK_MOVE_PHASE__DISK_MOVE_COMPLETED ? 1 : 0;
    }
    if (!strcmp(cmd, "folder-move") && arg) {
        Kvc__Vmx__FolderMoveRequest q = KVC__VMX__FOLDER_MOVE_REQUEST__INIT;
        q.dest_dir = (char *)arg;
        Kvc__Vmx__FolderMoveReply *r = (void *)call(sock, KVC__VMX__METHOD__VMX_FOLDER_MOVE, &q.base,
                                                    &kvc__vmx__folder_move_reply__descriptor);
        printf("from_dir=%s\nto_dir=%s\nconfig_path=%s\nlease_path=%s\nlease_generation=%llu\n"
               "serial_log=%s\nserial_bytes=%llu\nlog_path=%s\nduration_us=%llu\n", r->from_dir,
               r->to_dir, r->config_path, r->lease_path, (unsigned long long)r->lease_generation,
               r->serial_log, (unsigned long long)r->serial_bytes, r->log_path,
               (unsigned long long)r->duration_us);
        return 0;
    }
    if (!strcmp(cmd, "disk-info")) {
        Kvc__Vmx__DiskInfoRequest q = KVC__VMX__DISK_INFO_REQUEST__INIT;
        Kvc__Vmx__DiskInfo *r = (void *)call(sock, KVC__VMX__METHOD__VMX_DISK_INFO, &q.base,
                                             &kvc__vmx__disk_info__descriptor);
        printf("present=%d\npath=%s\nreadonly=%d\ncapacity_sectors=%llu\nrequests=%llu\n"
               "errors=%llu\nunsupported=%llu\nread_bytes=%llu\nwrite_bytes=%llu\nflushes=%llu\n"
               "cow_clusters=%llu\nstatus=%u\nread_requests=%llu\nwrite_requests=%llu\n"
               "flush_requests=%llu\nlayers=%zu\n", r->present, r->path, r->readonly,
               (unsigned long long)r->capacity_sectors, (unsigned long long)r->requests,
               (unsigned long long)r->errors, (unsigned long long)r->unsupported,
               (unsigned long long)r->read_bytes, (unsigned long long)r->write_bytes,
               (unsigned long long)r->flushes, (unsigned long long)r->cow_clusters, r->status,
               (unsigned long long)r->read_requests, (unsigned long long)r->write_requests,
               (unsigned long long)r->flush_requests, r->n_layers);
        for (size_t i = 0; i < r->n_layers; i++)
            printf("layer%zu=%s\nlayer%zu.clusters=%llu\n", i, r->layers[i]->name, i,
                   (unsigned long long)r->layers[i]->allocated_clusters);
        return 0;
    }
usage:
    fprintf(stderr, "usage: vmxctl -s SOCKET [-t TIMEOUT_MS] info|stats|poweroff|reset|pause|resume|"
                    "shutdown|reboot|console-read [OFFSET]|console-write TEXT|snapshot PATH|"
                    "suspend PATH|balloon MB|net-stats|net-link up|down|ping\n");
    fprintf(stderr, "       vmxctl -s SOCKET migrate unix:PATH|tcp:IP:PORT [downtime_ms=N] "
                    "[bandwidth=BYTES_PER_S] [timeout_ms=N] [max_rounds=N] [verify] [disk] [wait]\n"
                    "                [tls_dir=DIR peer=THUMBPRINT]\n"
                    "       vmxctl -s SOCKET migrate-status|migrate-cancel\n"
                    "       vmxctl -s SOCKET snapshot-delete PATH|disk-info\n"
                    "       vmxctl -s SOCKET disk-move DIR [bandwidth=BYTES_PER_S] [wait]\n"
                    "       vmxctl -s SOCKET disk-move-status|disk-move-cancel\n"
                    "       vmxctl -s SOCKET folder-move DIR\n");
    return 1;
}
