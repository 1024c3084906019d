/* CIM-XML requests (DSP0200/DSP0201): parse one SIMPLEREQ with libxml2,
 * run the intrinsic method against the class model, write the reply.
 *
 * Nothing in a request can crash the server: the document is parsed without
 * network access, entity substitution or DTD loading, every element the
 * code needs is looked up and checked, and any mismatch becomes an HTTP 400
 * (not CIM-XML) or a CIM <ERROR> (CIM-XML asking for something wrong).
 */
#include "hostd/cim/cim.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "log.h"

KVC_LOG_MODULE(cim);

/* ---- output buffer ---- */

struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void
sb_grow(struct sbuf *s, size_t n)
{
    if (s->oom || s->len + n + 1 <= s->cap)
        return;
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < s->len + n + 1)
        cap *= 2;
    char *p = realloc(s->p, cap);
    if (!p) {
        s->oom = true;
        return;
    }
    s->p = p;
    s->cap = cap;
}

static void
sb_addn(struct sbuf *s, const char *str, size_t n)
{
    sb_grow(s, n);
    if (s->oom)
        return;
    memcpy(s->p + s->len, str, n);
    s->len += n;
    s->p[s->len] = 0;
}

static void
sb_add(struct sbuf *s, const char *str)
{
    sb_addn(s, str, strlen(str));
}

/* Length of the valid UTF-8 sequence at p (0: invalid). */
static size_t
utf8_len(const unsigned char *p, size_t avail)
{
    size_t n;
    if (p[0] < 0x80)
        return 1;
    else if ((p[0] & 0xe0) == 0xc0 && p[0] >= 0xc2)
        n = 2;
    else if ((p[0] & 0xf0) == 0xe0)
        n = 3;
    else if ((p[0] & 0xf8) == 0xf0 && p[0] <= 0xf4)
        n = 4;
    else
        return 0;
    if (n > avail)
        return 0;
    for (size_t k = 1; k < n; k++)
        if ((p[k] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* Append text escaped for XML content or attribute values.  Bytes XML
 * cannot carry (controls, broken UTF-8 from a sysfs label) become '?'. */
static void
sb_esc(struct sbuf *s, const char *str)
{
    const unsigned char *p = (const unsigned char *)str;
    size_t left = strlen(str);
    while (left) {
        size_t n = 1;
        switch (*p) {
        case '&': sb_add(s, "&amp;"); break;
        case '<': sb_add(s, "&lt;"); break;
        case '>': sb_add(s, "&gt;"); break;
        case '"': sb_add(s, "&quot;"); break;
        case '\'': sb_add(s, "&apos;"); break;
        default:
            if (*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r') {
                sb_add(s, "?");
            } else if ((n = utf8_len(p, left)) == 0) {
                n = 1;
                sb_add(s, "?");
            } else {
                sb_addn(s, (const char *)p, n);
            }
        }
        p += n;
        left -= n;
    }
}

static void __attribute__((format(printf, 2, 3)))
sb_addf(struct sbuf *s, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        s->oom = true;
    else
        sb_addn(s, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* ---- the request ---- */

struct request {
    xmlDocPtr doc;
    char msgid[64];
    const char *method;         /* IMETHODCALL NAME */
    bool intrinsic;
    char ns[128];
    unsigned int ns_bit;
    xmlNodePtr params;          /* IMETHODCALL, to look up IPARAMVALUEs */
};

static xmlNodePtr
child(xmlNodePtr n, const char *name)
{
    for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && !strcmp((const char *)c->name, name))
            return c;
    return NULL;
}

static const char *
attr(xmlNodePtr n, const char *name)
{
    for (xmlAttrPtr a = n ? n->properties : NULL; a; a = a->next)
        if (!strcmp((const char *)a->name, name) && a->children
            && a->children->type == XML_TEXT_NODE)
            return (const char *)a->children->content;
    return NULL;
}

/* Concatenated text of n into buf; false if it does not fit. */
static bool
text(xmlNodePtr n, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = 0;
    for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next) {
        if (c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE)
            continue;
        size_t l = strlen((const char *)c->content);
        if (len + l >= size)
            return false;
        memcpy(buf + len, c->content, l);
        len += l;
        buf[len] = 0;
    }
    return true;
}

static xmlNodePtr
iparam(const struct request *rq, const char *name)
{
    for (xmlNodePtr c = rq->params->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && !strcmp((const char *)c->name, "IPARAMVALUE")) {
            const char *n = attr(c, "NAME");
            if (n && !strcasecmp(n, name))
                return c;
        }
    return NULL;
}

/* Boolean IPARAMVALUE: def when absent; -1 when malformed. */
static int
iparam_bool(const struct request *rq, const char *name, int def)
{
    xmlNodePtr p = iparam(rq, name);
    if (!p)
        return def;
    xmlNodePtr v = child(p, "VALUE");
    char buf[16];
    if (!v)
        return def;             /* NULL: the default */
    if (!text(v, buf, sizeof buf))
        return -1;
    if (!strcasecmp(buf, "TRUE"))
        return 1;
    if (!strcasecmp(buf, "FALSE"))
        return 0;
    return -1;
}

/* ---- reply writing ---- */

struct reply_ctx {
    struct sbuf sb;
    const struct request *rq;
    xmlNodePtr proplist;        /* VALUE.ARRAY or NULL: all properties */
};

static void
begin(struct reply_ctx *c)
{
    sb_add(&c->sb, "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\n"
                   "<CIM CIMVERSION=\"2.0\" DTDVERSION=\"2.0\">\n<MESSAGE ID=\"");
    sb_esc(&c->sb, c->rq->msgid);
    sb_add(&c->sb, "\" PROTOCOLVERSION=\"1.0\">\n<SIMPLERSP>\n<");
    sb_add(&c->sb, c->rq->intrinsic ? "IMETHODRESPONSE" : "METHODRESPONSE");
    sb_add(&c->sb, " NAME=\"");
    sb_esc(&c->sb, c->rq->method);
    sb_add(&c->sb, "\">\n");
}

static void
end(struct reply_ctx *c)
{
    sb_add(&c->sb, c->rq->intrinsic ? "</IMETHODRESPONSE>\n" : "</METHODRESPONSE>\n");
    sb_add(&c->sb, "</SIMPLERSP>\n</MESSAGE>\n</CIM>\n");
}

static void
error_reply(struct reply_ctx *c, enum kvc_cim_status code, const char *desc)
{
    begin(c);
    sb_addf(&c->sb, "<ERROR CODE=\"%d\" DESCRIPTION=\"", code);
    sb_esc(&c->sb, desc);
    sb_add(&c->sb, "\"/>\n");
    end(c);
}

static const char *
type_name(enum cim_type t)
{
    switch (t) {
    case CIM_T_UINT16: return "uint16";
    case CIM_T_UINT32: return "uint32";
    case CIM_T_UINT64: return "uint64";
    case CIM_T_SINT32: return "sint32";
    case CIM_T_BOOLEAN: return "boolean";
    case CIM_T_STRING: break;
    }
    return "string";
}

static void
write_instancename(struct reply_ctx *c, const struct cim_instance *i)
{
    sb_addf(&c->sb, "<INSTANCENAME CLASSNAME=\"%s\">", i->classname);
    for (int p = 0; p < i->nprops; p++) {
        const struct cim_prop *pr = &i->props[p];
        if (!pr->key)
            continue;
        sb_addf(&c->sb, "<KEYBINDING NAME=\"%s\"><KEYVALUE VALUETYPE=\"%s\">", pr->name,
                pr->type == CIM_T_STRING ? "string"
                : pr->type == CIM_T_BOOLEAN ? "boolean" : "numeric");
        sb_esc(&c->sb, pr->value ? pr->value : "");
        sb_add(&c->sb, "</KEYVALUE></KEYBINDING>");
    }
    sb_add(&c->sb, "</INSTANCENAME>\n");
}

static bool
wanted(const struct reply_ctx *c, const char *prop)
{
    if (!c->proplist)
        return true;
    for (xmlNodePtr v = c->proplist->children; v; v = v->next) {
        char buf[128];
        if (v->type == XML_ELEMENT_NODE && !strcmp((const char *)v->name, "VALUE")
            && text(v, buf, sizeof buf) && !strcasecmp(buf, prop))
            return true;
    }
    return false;
}

static void
write_instance(struct reply_ctx *c, const struct cim_instance *i)
{
    sb_addf(&c->sb, "<INSTANCE CLASSNAME=\"%s\">\n", i->classname);
    for (int p = 0; p < i->nprops; p++) {
        const struct cim_prop *pr = &i->props[p];
        if (!wanted(c, pr->name))
            continue;
        if (pr->array) {
            sb_addf(&c->sb, "<PROPERTY.ARRAY NAME=\"%s\" TYPE=\"%s\">", pr->name,
                    type_name(pr->type));
            if (pr->value) {
                sb_add(&c->sb, "<VALUE.ARRAY><VALUE>");
                sb_esc(&c->sb, pr->value);
                sb_add(&c->sb, "</VALUE></VALUE.ARRAY>");
            }
            sb_add(&c->sb, "</PROPERTY.ARRAY>\n");
        } else {
            sb_addf(&c->sb, "<PROPERTY NAME=\"%s\" TYPE=\"%s\">", pr->name,
                    type_name(pr->type));
            if (pr->value) {
                sb_add(&c->sb, "<VALUE>");
                sb_esc(&c->sb, pr->value);
                sb_add(&c->sb, "</VALUE>");
            }
            sb_add(&c->sb, "</PROPERTY>\n");
        }
    }
    sb_add(&c->sb, "</INSTANCE>\n");
}

/* ---- operations ---- */

/* The class named by IPARAMVALUE ClassName, checked against the namespace.
 * Returns NULL after writing the error reply. */
static const struct cim_class *
class_param(struct reply_ctx *c, bool required)
{
    xmlNodePtr p = iparam(c->rq, "ClassName");
    xmlNodePtr cn = p ? child(p, "CLASSNAME") : NULL;
    const char *name = cn ? attr(cn, "NAME") : NULL;
    if (!name) {
        if (required)
            error_reply(c, KVC_CIM_ERR_INVALID_PARAMETER, "ClassName missing");
        return NULL;
    }
    const struct cim_class *cls = cim_class_find(name);
    if (!cls || (cls->enumerate && !(cls->ns_mask & c->rq->ns_bit))) {
        char msg[300];
        snprintf(msg, sizeof msg, "class %s not found in %s", name, c->rq->ns);
        error_reply(c, KVC_CIM_ERR_INVALID_CLASS, msg);
        return NULL;
    }
    return cls;
}

static void
enum_failed(struct reply_ctx *c, int r)
{
    char msg[128];
    snprintf(msg, sizeof msg, "provider failed: %s", strerror(-r));
    error_reply(c, KVC_CIM_ERR_FAILED, msg);
}

static void
op_enumerate_instances(struct reply_ctx *c, const struct kvc_cim_provider *pv, bool names)
{
    const struct cim_class *cls = class_param(c, true);
    if (!cls)
        return;
    if (!names) {
        xmlNodePtr pl = iparam(c->rq, "PropertyList");
        c->proplist = pl ? child(pl, "VALUE.ARRAY") : NULL;
        if (iparam_bool(c->rq, "DeepInheritance", 1) < 0
            || iparam_bool(c->rq, "LocalOnly", 0) < 0
            || iparam_bool(c->rq, "IncludeQualifiers", 0) < 0
            || iparam_bool(c->rq, "IncludeClassOrigin", 0) < 0) {
            error_reply(c, KVC_CIM_ERR_INVALID_PARAMETER, "bad boolean parameter");
            return;
        }
    }
    struct cim_instance_list l = { 0 };
    int r = cim_enumerate(pv, cls, c->rq->ns_bit, &l);
    if (r < 0) {
        enum_failed(c, r);
        goto out;
    }
    begin(c);
    sb_add(&c->sb, "<IRETURNVALUE>\n");
    for (size_t k = 0; k < l.n; k++) {
        if (names) {
            write_instancename(c, &l.v[k]);
        } else {
            sb_add(&c->sb, "<VALUE.NAMEDINSTANCE>\n");
            write_instancename(c, &l.v[k]);
            write_instance(c, &l.v[k]);
            sb_add(&c->sb, "</VALUE.NAMEDINSTANCE>\n");
        }
    }
    sb_add(&c->sb, "</IRETURNVALUE>\n");
    end(c);
out:
    cim_instance_list_free(&l);
}

/* Whether the instance's keys equal the INSTANCENAME's key bindings. */
static bool
keys_match(const struct cim_instance *i, xmlNodePtr iname)
{
    int nbound = 0, nkeys = 0;
    for (int p = 0; p < i->nprops; p++)
        nkeys += i->props[p].key;
    for (xmlNodePtr kb = iname->children; kb; kb = kb->next) {
        if (kb->type != XML_ELEMENT_NODE)
            continue;
        const char *kname;
        xmlNodePtr kv;
        if (!strcmp((const char *)kb->name, "KEYBINDING")) {
            kname = attr(kb, "NAME");
            kv = child(kb, "KEYVALUE");
        } else if (!strcmp((const char *)kb->name, "KEYVALUE") && nkeys == 1) {
            kname = NULL;       /* single-key shorthand */
            kv = kb;
        } else {
            return false;
        }
        char val[512];
        if (!kv || !text(kv, val, sizeof val))
            return false;
        const struct cim_prop *pr = NULL;
        for (int p = 0; p < i->nprops; p++)
            if (i->props[p].key && (!kname || !strcasecmp(i->props[p].name, kname)))
                pr = &i->props[p];
        if (!pr || !pr->value)
            return false;
        if (pr->type == CIM_T_STRING) {
            if (strcmp(pr->value, val))
                return false;
        } else {
            char *e;
            long long a = strtoll(val, &e, 0);
            if (*e || a != strtoll(pr->value, NULL, 0))
                return false;
        }
        nbound++;
    }
    return nbound == nkeys;
}

static void
op_get_instance(struct reply_ctx *c, const struct kvc_cim_provider *pv)
{
    xmlNodePtr p = iparam(c->rq, "InstanceName");
    xmlNodePtr iname = p ? child(p, "INSTANCENAME") : NULL;
    const char *cname = iname ? attr(iname, "CLASSNAME") : NULL;
    if (!cname) {
        error_reply(c, KVC_CIM_ERR_INVALID_PARAMETER, "InstanceName missing");
        return;
    }
    const struct cim_class *cls = cim_class_find(cname);
    if (!cls || (cls->enumerate && !(cls->ns_mask & c->rq->ns_bit))) {
        char msg[300];
        snprintf(msg, sizeof msg, "class %s not found in %s", cname, c->rq->ns);
        error_reply(c, KVC_CIM_ERR_INVALID_CLASS, msg);
        return;
    }
    xmlNodePtr pl = iparam(c->rq, "PropertyList");
    c->proplist = pl ? child(pl, "VALUE.ARRAY") : NULL;
    struct cim_instance_list l = { 0 };
    int r = cim_enumerate(pv, cls, c->rq->ns_bit, &l);
    if (r < 0) {
        enum_failed(c, r);
        goto out;
    }
    for (size_t k = 0; k < l.n; k++) {
        if (keys_match(&l.v[k], iname)) {
            begin(c);
            sb_add(&c->sb, "<IRETURNVALUE>\n");
            write_instance(c, &l.v[k]);
            sb_add(&c->sb, "</IRETURNVALUE>\n");
            end(c);
            goto out;
        }
    }
    error_reply(c, KVC_CIM_ERR_NOT_FOUND, "no such instance");
out:
    cim_instance_list_free(&l);
}

static void
op_enumerate_class_names(struct reply_ctx *c)
{
    const struct cim_class *base = NULL;
    if (iparam(c->rq, "ClassName") && child(iparam(c->rq, "ClassName"), "CLASSNAME")) {
        if (!(base = class_param(c, true)))
            return;
    }
    int deep = iparam_bool(c->rq, "DeepInheritance", 0);
    if (deep < 0) {
        error_reply(c, KVC_CIM_ERR_INVALID_PARAMETER, "bad boolean parameter");
        return;
    }
    begin(c);
    sb_add(&c->sb, "<IRETURNVALUE>\n");
    for (size_t k = 0; k < cim_nclasses; k++) {
        const struct cim_class *d = &cim_classes[k];
        if (d == base || !cim_class_in_ns(d, c->rq->ns_bit))
            continue;
        bool direct = base ? (d->super && !strcasecmp(d->super, base->name)) : !d->super;
        bool below = base ? cim_class_is_a(d, base) : true;
        if (direct || (deep && below))
            sb_addf(&c->sb, "<CLASSNAME NAME=\"%s\"/>\n", d->name);
    }
    sb_add(&c->sb, "</IRETURNVALUE>\n");
    end(c);
}

/* ---- entry point ---- */

static void
http_error(struct kvc_cim_reply *reply, int status, const char *cim_error)
{
    reply->http_status = status;
    reply->cim_error = cim_error;
}

static bool
parse_namespace(xmlNodePtr lnp, struct request *rq)
{
    size_t len = 0;
    rq->ns[0] = 0;
    for (xmlNodePtr n = lnp ? lnp->children : NULL; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE || strcmp((const char *)n->name, "NAMESPACE"))
            continue;
        const char *part = attr(n, "NAME");
        if (!part)
            return false;
        size_t l = strlen(part);
        if (len + l + 2 > sizeof rq->ns)
            return false;
        if (len)
            rq->ns[len++] = '/';
        memcpy(rq->ns + len, part, l);
        len += l;
        rq->ns[len] = 0;
    }
    return len > 0;
}

void
kvc_cim_handle(const struct kvc_cim_provider *pv, const char *cim_method,
               const char *cim_object, const char *body, size_t len,
               struct kvc_cim_reply *reply)
{
    struct request rq = { 0 };
    struct reply_ctx c = { .rq = &rq };
    memset(reply, 0, sizeof *reply);
    reply->http_status = 200;

    if (len > INT_MAX) {
        http_error(reply, 400, "request-not-well-formed");
        return;
    }
    rq.doc = xmlReadMemory(body, (int)len, "cimom.xml", NULL,
                           XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!rq.doc) {
        http_error(reply, 400, "request-not-well-formed");
        return;
    }
    xmlNodePtr root = xmlDocGetRootElement(rq.doc);
    xmlNodePtr msg = root && !strcmp((const char *)root->name, "CIM") ? child(root, "MESSAGE") : NULL;
    if (!msg) {
        http_error(reply, 400, "request-not-valid");
        goto out;
    }
    if (child(msg, "MULTIREQ")) {
        http_error(reply, 501, "multiple-requests-unsupported");
        goto out;
    }
    xmlNodePtr sreq = child(msg, "SIMPLEREQ");
    xmlNodePtr call = child(sreq, "IMETHODCALL");
    rq.intrinsic = call != NULL;
    if (!call)
        call = child(sreq, "METHODCALL");
    const char *id = attr(msg, "ID");
    rq.method = call ? attr(call, "NAME") : NULL;
    if (!rq.method || !id || strlen(id) >= sizeof rq.msgid) {
        http_error(reply, 400, "request-not-valid");
        goto out;
    }
    snprintf(rq.msgid, sizeof rq.msgid, "%s", id);
    if (cim_method && strcasecmp(cim_method, rq.method)) {
        http_error(reply, 400, "header-mismatch");
        goto out;
    }
    rq.params = call;

    if (!rq.intrinsic) {
        error_reply(&c, KVC_CIM_ERR_NOT_SUPPORTED, "extrinsic methods are not supported");
        goto done;
    }
    if (!parse_namespace(child(call, "LOCALNAMESPACEPATH"), &rq)) {
        http_error(reply, 400, "request-not-valid");
        goto out;
    }
    (void)cim_object;           /* the XML namespace is authoritative */
    if (!strcasecmp(rq.ns, "root/cimv2")) {
        rq.ns_bit = CIM_NS_CIMV2;
    } else if (!strcasecmp(rq.ns, "root/interop")) {
        rq.ns_bit = CIM_NS_INTEROP;
    } else {
        char m[200];
        snprintf(m, sizeof m, "namespace %s not found", rq.ns);
        error_reply(&c, KVC_CIM_ERR_INVALID_NAMESPACE, m);
        goto done;
    }

    if (!strcmp(rq.method, "EnumerateInstances"))
        op_enumerate_instances(&c, pv, false);
    else if (!strcmp(rq.method, "EnumerateInstanceNames"))
        op_enumerate_instances(&c, pv, true);
    else if (!strcmp(rq.method, "GetInstance"))
        op_get_instance(&c, pv);
    else if (!strcmp(rq.method, "EnumerateClassNames"))
        op_enumerate_class_names(&c);
    else
        error_reply(&c, KVC_CIM_ERR_NOT_SUPPORTED, "operation not supported");

done:
    if (c.sb.oom) {
        free(c.sb.p);
        c.sb = (struct sbuf){ 0 };
        http_error(reply, 500, NULL);
        goto out;
    }
    reply->body = c.sb.p;
    reply->len = c.sb.len;
    c.sb.p = NULL;
out:
    free(c.sb.p);
    xmlFreeDoc(rq.doc);
}
