/* One configuration-file format for every kvcenter daemon and for VM config
 * files (docs/configuration.md).  Named configfile.h, not config.h, so that
 * it never shadows autoconf's config.h.
 *
 *     # comment
 *     [server]
 *     port = 8443
 *     heartbeat = 500ms
 *     [datastore "ds1"]            # a named (repeatable) section
 *     path = "/srv/ds1"
 *
 * Each program declares what it accepts in a schema table: sections, and in
 * each section typed keys with defaults and bounds.  Anything the schema does
 * not declare is rejected, and every error names the file and the line:
 *     vpxd.conf:12: key 'port': 70000 out of range (1..65535)
 *
 * Errors: functions that can fail return 0 or -errno (-EINVAL for a bad
 * file, with the messages in *errs).  Getters are for keys the program
 * declared itself: asking for an undeclared key, or with the wrong type, is a
 * programming error and aborts.
 */
#ifndef KVC_CONFIGFILE_H
#define KVC_CONFIGFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum kvc_cfg_type {
    KVC_CFG_STRING = 1,
    KVC_CFG_INT,        /* int64, optional [min, max] */
    KVC_CFG_BOOL,       /* true/false, yes/no, on/off, 1/0 */
    KVC_CFG_SIZE,       /* bytes: 512, 64K, 64M, 1G, 2T (binary units) */
    KVC_CFG_DURATION,   /* milliseconds: 500ms, 2s, 5m, 1h, 1d */
    KVC_CFG_ENUM,       /* one of a NULL-terminated list of words */
    KVC_CFG_LIST,       /* comma-separated strings: a, "b c", d */
};

struct kvc_cfg_key {
    const char *name;
    enum kvc_cfg_type type;
    const char *def;            /* default, written as in a file; NULL: none */
    bool required;              /* must be set in the file */
    bool bounded;               /* INT/SIZE/DURATION: check min <= v <= max */
    int64_t min, max;
    const char *const *values;  /* ENUM: the accepted words, NULL-terminated */
    const char *help;           /* one line, for docs and dumps */
};

/* Schema helpers, so tables read like declarations. */
#define KVC_CFG_KEY_STRING(N, DEF, HELP) \
    { .name = (N), .type = KVC_CFG_STRING, .def = (DEF), .help = (HELP) }
#define KVC_CFG_KEY_INT(N, DEF, MIN, MAX, HELP) \
    { .name = (N), .type = KVC_CFG_INT, .def = (DEF), .bounded = true, \
      .min = (MIN), .max = (MAX), .help = (HELP) }
#define KVC_CFG_KEY_BOOL(N, DEF, HELP) \
    { .name = (N), .type = KVC_CFG_BOOL, .def = (DEF), .help = (HELP) }
#define KVC_CFG_KEY_SIZE(N, DEF, MIN, MAX, HELP) \
    { .name = (N), .type = KVC_CFG_SIZE, .def = (DEF), .bounded = true, \
      .min = (MIN), .max = (MAX), .help = (HELP) }
#define KVC_CFG_KEY_DURATION(N, DEF, MIN, MAX, HELP) \
    { .name = (N), .type = KVC_CFG_DURATION, .def = (DEF), .bounded = true, \
      .min = (MIN), .max = (MAX), .help = (HELP) }
#define KVC_CFG_KEY_ENUM(N, DEF, HELP, ...) \
    { .name = (N), .type = KVC_CFG_ENUM, .def = (DEF), .help = (HELP), \
      .values = (const char *const[]){ __VA_ARGS__, NULL } }
#define KVC_CFG_KEY_LIST(N, DEF, HELP) \
    { .name = (N), .type = KVC_CFG_LIST, .def = (DEF), .help = (HELP) }
#define KVC_CFG_KEY_END { .name = NULL }

struct kvc_cfg_section_def {
    const char *name;           /* "" : keys written before any [section] */
    bool named;                 /* [name "instance"], may repeat */
    const struct kvc_cfg_key *keys;     /* ends with KVC_CFG_KEY_END */
};

struct kvc_cfg_schema {
    const char *name;           /* "vpxd", "vm", ... (shown by the dump) */
    const struct kvc_cfg_section_def *sections;  /* ends with { NULL } */
};

struct kvc_config;
struct kvc_cfg_section;

/* Parse TEXT (LEN bytes; NUL bytes are an error) named FILENAME in messages.
 * On success *OUT holds the config, with every unset key at its default.
 * On -EINVAL, *ERRS (if ERRS is not NULL) receives a malloc'd string of one
 * or more "file:line: message" lines (caller frees); *OUT is NULL. */
int kvc_config_parse(const struct kvc_cfg_schema *, const char *filename,
                     const char *text, size_t len,
                     struct kvc_config **out, char **errs);
/* Same, reading PATH (at most KVC_CONFIG_MAX_FILE bytes).  A file that
 * cannot be read gives -errno and "path: <strerror>" in *ERRS. */
#define KVC_CONFIG_MAX_FILE (1u << 20)
int kvc_config_load(const struct kvc_cfg_schema *, const char *path,
                    struct kvc_config **out, char **errs);
/* An empty config (all defaults), e.g. to build a VM config file and write
 * it with kvc_config_dump().  -EINVAL if a required key or a bad default. */
int kvc_config_new(const struct kvc_cfg_schema *, struct kvc_config **out,
                   char **errs);
void kvc_config_free(struct kvc_config *);

/* Writes the whole config in normal form: every section and key, defaults
 * filled in, values in canonical spelling.  The output parses back to the
 * same config. */
void kvc_config_dump(const struct kvc_config *, FILE *);

/* Check mode for a daemon's -n flag: parse PATH, print the normalised config
 * to OUT and "configuration OK" to ERR, or the errors to ERR.  Returns the
 * exit status: 0 if the file is good, 1 if not. */
int kvc_config_check(const struct kvc_cfg_schema *, const char *path,
                     FILE *out, FILE *err);

/* Sections.  An unnamed section always exists (defaults), so
 * kvc_config_section() returns non-NULL for every unnamed section the schema
 * declares.  Named sections are counted and fetched by index, in file order,
 * or by instance name. */
const struct kvc_cfg_section *kvc_config_section(const struct kvc_config *,
                                                 const char *section);
size_t kvc_config_count(const struct kvc_config *, const char *section);
const struct kvc_cfg_section *kvc_config_nth(const struct kvc_config *,
                                             const char *section, size_t idx);
const struct kvc_cfg_section *kvc_config_find(const struct kvc_config *,
                                              const char *section,
                                              const char *instance);
/* Instance name of a named section, NULL for an unnamed one. */
const char *kvc_cfg_instance(const struct kvc_cfg_section *);

/* Whether the file set KEY (false: default or unset). */
bool kvc_cfg_is_set(const struct kvc_cfg_section *, const char *key);
/* Whether KEY has a value at all (set, or has a default). */
bool kvc_cfg_has(const struct kvc_cfg_section *, const char *key);
/* Getters.  STRING returns NULL when there is no value. */
const char *kvc_cfg_string(const struct kvc_cfg_section *, const char *key);
int64_t kvc_cfg_int(const struct kvc_cfg_section *, const char *key);
bool kvc_cfg_bool(const struct kvc_cfg_section *, const char *key);
uint64_t kvc_cfg_size(const struct kvc_cfg_section *, const char *key);
int64_t kvc_cfg_duration_ms(const struct kvc_cfg_section *, const char *key);
/* ENUM: the word, and its index in the schema's list. */
const char *kvc_cfg_enum(const struct kvc_cfg_section *, const char *key);
int kvc_cfg_enum_index(const struct kvc_cfg_section *, const char *key);
/* LIST: number of items and item I. */
size_t kvc_cfg_list_len(const struct kvc_cfg_section *, const char *key);
const char *kvc_cfg_list_item(const struct kvc_cfg_section *, const char *key,
                              size_t i);

/* Build or change a config in code.  VALUE is written as in a file (it is
 * parsed and checked by the same rules).  Returns 0, or -EINVAL with a
 * message in *ERRS; -ENOENT for an undeclared section or key; -EEXIST for a
 * duplicate named instance. */
int kvc_config_set(struct kvc_config *, const char *section,
                   const char *instance, const char *key, const char *value,
                   char **errs);
int kvc_config_add_section(struct kvc_config *, const char *section,
                           const char *instance, char **errs);

/* Value parsers, shared with command-line option parsing.  Return 0 or
 * -EINVAL / -ERANGE. */
int kvc_parse_int64(const char *, int64_t *);
int kvc_parse_bool(const char *, bool *);
int kvc_parse_size(const char *, uint64_t *);
int kvc_parse_duration_ms(const char *, int64_t *);
/* Canonical spellings ("64M", "1500ms", "2m"); BUF of at least 32 bytes. */
void kvc_format_size(uint64_t, char *buf, size_t len);
void kvc_format_duration_ms(int64_t, char *buf, size_t len);

#endif
