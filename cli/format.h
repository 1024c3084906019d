/* kvcli output: the five formatters, in the shapes esxcli prints.
 *
 * A command describes its output once, as a shape: a type name and typed
 * fields with their display labels ("Virtual Switch").  Its result is JSON:
 * an object for one structure, an array of objects for a list, keyed by each
 * field's key (the label without spaces: "VirtualSwitch").  The formatter
 * then prints it as
 *   table     esxcli's default: "   Label: value" blocks for a structure,
 *             a table with a dashed rule or one block per item for a list
 *   keyvalue  VersionGet.Version.string=0.1.0
 *   csv       header of keys (sorted, each followed by ','), one row per item
 *   xml       <output xmlns="http://www.vmware.com/Products/ESX/5.0/esxcli/">
 *   json      the result, fields in declared order
 * Errors: 0 or -errno.
 */
#ifndef KVC_CLI_FORMAT_H
#define KVC_CLI_FORMAT_H

#include <jansson.h>
#include <stdio.h>

enum kvc_ftype {
    KVC_F_STRING = 1,
    KVC_F_INT,
    KVC_F_BOOL,
    KVC_F_STRLIST,      /* array of strings: "a, b" in tables */
};

struct kvc_field {
    const char *label;  /* "VLAN ID"; its key is "VLANID" */
    enum kvc_ftype type;
};

enum kvc_list_style {
    KVC_LIST_TABLE = 0, /* columns under a dashed rule */
    KVC_LIST_BLOCKS,    /* one "   Label: value" block per item */
};

struct kvc_shape {
    const char *type_name;              /* "VersionGet", "PortGroup" */
    const struct kvc_field *fields;     /* ends with { NULL } */
    enum kvc_list_style list_style;
    const char *block_head;             /* BLOCKS: label heading each block */
};

enum kvc_formatter {
    KVC_FMT_TABLE = 0,
    KVC_FMT_JSON,
    KVC_FMT_CSV,
    KVC_FMT_XML,
    KVC_FMT_KEYVALUE,
};

/* "table", "json", "csv", "xml", "keyvalue"; -1 if unknown. */
int kvc_formatter_from_name(const char *);
extern const char *const kvc_formatter_names[];     /* NULL-terminated */

/* The key of a label: spaces and other non-alphanumerics dropped. */
void kvc_field_key(const char *label, char *buf, size_t len);

/* Prints RESULT (object or array of objects) in FMT.  -EINVAL if RESULT is
 * neither. */
int kvc_format_write(FILE *, enum kvc_formatter fmt,
                     const struct kvc_shape *, const json_t *result);

#endif
