/* The command table shared by kvcli and hostd's SSH shell: namespaces,
 * commands, typed options, esxcli-style errors and --help at every level.
 *
 *     static const struct kvc_opt pg_set_opts[] = {
 *         { "portgroup-name", 'p', KVC_OPT_STRING, .required = true,
 *           .help = "The name of the port group." },
 *         { "vlan-id", 'v', KVC_OPT_INT, .min = 0, .max = 4095, .bounded = true,
 *           .help = "The VLAN id (0 - 4095)." },
 *         { NULL },
 *     };
 *     { "network vswitch standard portgroup set", "Set the VLAN id.",
 *       pg_set_opts, NULL, run_pg_set },
 *
 * A bad value is reported the way esxcli does it, followed by the usage:
 *     Error: While processing '--vlan-id'. Expected an integer in the range
 *     (0 - 4095), got 'abc'.
 * The transport is the caller's: run() gets the caller's context (kvcli: a
 * REST session; the SSH shell: its own).  Errors: 0 or -errno.
 */
#ifndef KVC_CLI_CMD_H
#define KVC_CLI_CMD_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "format.h"

enum kvc_opt_type {
    KVC_OPT_STRING = 1,
    KVC_OPT_INT,        /* 64-bit; optional [min, max] */
    KVC_OPT_BOOL,       /* takes a value: true/false, yes/no, 1/0 */
    KVC_OPT_ENUM,       /* one of values[] */
};

struct kvc_opt {
    const char *name;           /* long name: "vlan-id" */
    char short_name;            /* 'v', or 0 */
    enum kvc_opt_type type;
    bool required;
    bool bounded;
    int64_t min, max;
    const char *const *values;  /* ENUM, NULL-terminated */
    const char *help;
};

#define KVC_CMD_MAX_OPTS 16

struct kvc_cmd;
struct kvc_args {
    const struct kvc_cmd *cmd;
    const char *str[KVC_CMD_MAX_OPTS];  /* as given; NULL if not given */
    int64_t num[KVC_CMD_MAX_OPTS];      /* INT value, BOOL 0/1, ENUM index */
};

struct kvc_ctx;                 /* the caller's: transport, credentials */

struct kvc_cmd {
    const char *path;           /* "system version get": namespaces + verb */
    const char *help;
    const struct kvc_opt *opts; /* NULL, or ends with { NULL } */
    const struct kvc_shape *shape;      /* NULL: prints nothing on success */
    /* 0 with *RESULT (an object or array for SHAPE, or NULL), or -errno
     * with a message in ERR (printed as "Error: ERR"). */
    int (*run)(struct kvc_ctx *, const struct kvc_args *, json_t **result,
               char *err, size_t errlen);
};

struct kvc_ns {
    const char *path;           /* "network vswitch" */
    const char *help;
};

struct kvc_cmd_table {
    const char *prog;           /* "kvcli", "esxcli" */
    const char *global_usage;   /* "[options]" part of the top usage line */
    const struct kvc_ns *namespaces;    /* ends with { NULL } */
    const struct kvc_cmd *cmds;         /* ends with { NULL } */
};

/* Option values of a parsed command line. */
bool kvc_arg_isset(const struct kvc_args *, const char *name);
const char *kvc_arg_str(const struct kvc_args *, const char *name);
int64_t kvc_arg_int(const struct kvc_args *, const char *name, int64_t def);
bool kvc_arg_bool(const struct kvc_args *, const char *name, bool def);

/* Parses WORDS ("network", "vswitch", ..., "--vlan-id=3") against TABLE.
 * Returns:
 *   1 and *CMD/ARGS filled: run the command;
 *   0: help was asked for and printed to OUT;
 *  -EINVAL: an error and the usage were printed to ERR.  */
int kvc_cmd_parse(const struct kvc_cmd_table *, int nwords, char **words,
                  const struct kvc_cmd **cmd, struct kvc_args *args,
                  FILE *out, FILE *err);

/* Parse, run and print in FMT.  Returns the exit status: 0 on success,
 * 1 on any error (bad arguments, the command failed). */
int kvc_cmd_main(const struct kvc_cmd_table *, struct kvc_ctx *,
                 int nwords, char **words, enum kvc_formatter fmt,
                 FILE *out, FILE *err);

/* Shell completion: prints, one per line, the words that may follow WORDS
 * (namespaces and commands, a command's options not given yet, or the
 * values of an enum or bool option that WORDS ends with). */
void kvc_cmd_complete(const struct kvc_cmd_table *, int nwords, char **words,
                      FILE *out);

/* Help texts (also used after errors). */
void kvc_cmd_usage(const struct kvc_cmd_table *, const struct kvc_cmd *, FILE *);
void kvc_ns_help(const struct kvc_cmd_table *, const char *ns_path, FILE *);

#endif
