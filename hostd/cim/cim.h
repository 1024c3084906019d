/* CIM-XML server (DSP0200 over HTTP/HTTPS) for a kvcenter host.
 *
 * The server answers the intrinsic read operations hardware monitors use
 * (EnumerateInstances, EnumerateInstanceNames, GetInstance,
 * EnumerateClassNames) in root/cimv2 and root/interop.  Host hardware comes
 * from /proc and /sys (under an optional root prefix, so tests can supply a
 * fake tree); the VMs and the credential check come from the host through
 * struct kvc_cim_provider.
 *
 * Threading: the HTTP side runs in libmicrohttpd's own thread, so the
 * provider callbacks are called from that thread and must be thread-safe
 * (hostd hands out a snapshot taken under its lock).
 *
 * Errors: functions returning int return 0 or -errno.
 */
#ifndef KVC_CIM_H
#define KVC_CIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kvc_cim_vm {
    char name[128];             /* display name */
    char uuid[64];
    char power_state[24];       /* "poweredOn", "poweredOff", "suspended" */
    char guest_os[64];
    uint64_t memory_mb;
    unsigned int vcpus;
};

struct kvc_cim_provider {
    void *ctx;
    /* Return true when user/password are valid.  Required: a server without
     * it refuses every request. */
    bool (*check_auth)(void *ctx, const char *user, const char *password);
    /* Fill *vms with a malloc'ed array (freed by the caller with free()).
     * Returns 0 or -errno.  Optional: no VMs when NULL. */
    int (*list_vms)(void *ctx, struct kvc_cim_vm **vms, size_t *n);
    /* Host name for CIM_ComputerSystem.Name; gethostname() when NULL. */
    const char *hostname;
    /* Prefix for /proc and /sys ("" or NULL: the real ones). */
    const char *sysroot;
};

struct kvc_cim_config {
    const char *address;        /* listen address, default 127.0.0.1 */
    uint16_t port;              /* 0: pick a free one (see kvc_cim_server_port) */
    const char *tls_cert_pem;   /* both set: HTTPS */
    const char *tls_key_pem;
    size_t max_body;            /* default 1 MiB */
};

struct kvc_cim_server;

/* Start listening; the provider is copied (its ctx and strings must outlive
 * the server).  Returns 0 or -errno. */
int kvc_cim_server_start(const struct kvc_cim_config *,
                         const struct kvc_cim_provider *,
                         struct kvc_cim_server **out);
uint16_t kvc_cim_server_port(const struct kvc_cim_server *);
/* Stop and free; accepts NULL. */
void kvc_cim_server_stop(struct kvc_cim_server *);

/* CIM status codes (DSP0200 table 3). */
enum kvc_cim_status {
    KVC_CIM_OK = 0,
    KVC_CIM_ERR_FAILED = 1,
    KVC_CIM_ERR_ACCESS_DENIED = 2,
    KVC_CIM_ERR_INVALID_NAMESPACE = 3,
    KVC_CIM_ERR_INVALID_PARAMETER = 4,
    KVC_CIM_ERR_INVALID_CLASS = 5,
    KVC_CIM_ERR_NOT_FOUND = 6,
    KVC_CIM_ERR_NOT_SUPPORTED = 7,
};

struct kvc_cim_reply {
    int http_status;            /* 200, or 400 for a request that is not CIM-XML */
    const char *cim_error;      /* CIMError header value on 400, else NULL */
    char *body;                 /* malloc'ed; may be NULL on 400 */
    size_t len;
};

/* Answer one request body.  cim_method and cim_object are the CIMMethod and
 * CIMObject header values (NULL when absent).  Never fails: bad input gets
 * an HTTP 400 or a CIM <ERROR>.  The caller frees reply->body. */
void kvc_cim_handle(const struct kvc_cim_provider *, const char *cim_method,
                    const char *cim_object, const char *body, size_t len,
                    struct kvc_cim_reply *reply);

/* ---- internal: the class model (cim_classes.c) ---- */

enum cim_type { CIM_T_STRING, CIM_T_UINT16, CIM_T_UINT32, CIM_T_UINT64,
                CIM_T_SINT32, CIM_T_BOOLEAN };

#define CIM_MAX_PROPS 32

struct cim_prop {
    const char *name;
    enum cim_type type;
    bool key;
    bool array;                 /* a one-element array (OperationalStatus) */
    char *value;                /* malloc'ed; NULL: property is NULL */
};

struct cim_instance {
    const char *classname;
    int nprops;
    struct cim_prop props[CIM_MAX_PROPS];
};

struct cim_instance_list {
    struct cim_instance *v;
    size_t n, cap;
};

struct cim_class {
    const char *name;
    const char *super;          /* NULL for a root class */
    unsigned int ns_mask;       /* CIM_NS_* where it has instances */
    /* Concrete classes append their instances; NULL for abstract ones. */
    int (*enumerate)(const struct kvc_cim_provider *, struct cim_instance_list *);
};

#define CIM_NS_CIMV2   1u
#define CIM_NS_INTEROP 2u

const struct cim_class *cim_class_find(const char *name);
/* All classes, NULL-terminated by name. */
extern const struct cim_class cim_classes[];
extern const size_t cim_nclasses;
bool cim_class_is_a(const struct cim_class *c, const struct cim_class *ancestor);
/* Whether the class or one of its subclasses has instances in ns. */
bool cim_class_in_ns(const struct cim_class *c, unsigned int ns);
/* Instances of c and its subclasses in ns.  Returns 0 or -errno. */
int cim_enumerate(const struct kvc_cim_provider *, const struct cim_class *c,
                  unsigned int ns, struct cim_instance_list *out);
void cim_instance_list_free(struct cim_instance_list *);

#endif
