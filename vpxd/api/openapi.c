/* /api/openapi.json: generated from the route table the server dispatches
 * with.  Action routes are keyed "path?action=x", as in the published
 * vSphere Automation spec. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vpxd/api/api.h"

static json_t *error_schema_ref(void)
{
    return json_pack("{s:s, s:{s:{s:{s:s}}}}", "description", "error",
                     "content", "application/json", "schema", "$ref",
                     "#/components/schemas/Error");
}

static json_t *operation(const struct api_route *rt)
{
    json_t *op = json_object(), *params = json_array(), *resp = json_object();
    const char *p = rt->path;
    char code[8];

    json_object_set_new(op, "summary", json_string(rt->summary ? rt->summary : ""));
    while ((p = strchr(p, '{'))) {
        const char *e = strchr(p, '}');
        json_array_append_new(params, json_pack("{s:s%, s:s, s:b, s:{s:s}}", "name", p + 1,
                                                (size_t)(e - p - 1), "in", "path",
                                                "required", 1, "schema", "type", "string"));
        p = e;
    }
    if (rt->action)
        json_array_append_new(params, json_pack("{s:s, s:s, s:b, s:{s:s, s:[s]}}", "name",
                                                strncmp(rt->path, "/rest/", 6) ? "action"
                                                                               : "~action",
                                                "in", "query", "required", 1, "schema",
                                                "type", "string", "enum", rt->action));
    if (rt->query) {
        char *q = strdup(rt->query), *save = NULL;
        for (char *t = strtok_r(q, ",", &save); t; t = strtok_r(NULL, ",", &save))
            json_array_append_new(params, json_pack("{s:s, s:s, s:b}", "name", t, "in",
                                                    "query", "required", 0));
        free(q);
    }
    if (rt->task)
        json_array_append_new(params, json_pack("{s:s, s:s, s:b, s:{s:s}, s:s}", "name",
                                                "vmw-task", "in", "query", "required", 0,
                                                "schema", "type", "boolean", "description",
                                                "true: answer 202 with a task id at once"));
    json_object_set_new(op, "parameters", params);
    if (rt->body_schema)
        json_object_set_new(op, "requestBody", json_pack("{s:b, s:{s:{s:{s:s}}}}", "required",
                                                         1, "content", "application/json",
                                                         "schema", "type", "object"));
    snprintf(code, sizeof(code), "%d", rt->status);
    json_object_set_new(resp, code, json_pack("{s:s}", "description", "success"));
    if (rt->task)
        json_object_set_new(resp, "202", json_pack("{s:s}", "description",
                                                   "the task id (vmw-task=true)"));
    json_object_set_new(resp, "default", error_schema_ref());
    json_object_set_new(op, "responses", resp);
    if (rt->auth == API_AUTH_SESSION)
        json_object_set_new(op, "security", json_pack("[{s:[]}]", "session"));
    else if (rt->auth == API_AUTH_BASIC)
        json_object_set_new(op, "security", json_pack("[{s:[]}]", "basic"));
    else
        json_object_set_new(op, "security", json_array());
    if (rt->privilege)
        json_object_set_new(op, "x-kvc-privilege", json_string(rt->privilege));
    return op;
}

void api_openapi(struct api_req *r)
{
    json_t *paths = json_object();
    json_t *doc;

    for (size_t i = 0; i < api_n_routes; i++) {
        const struct api_route *rt = &api_routes[i];
        char key[256], method[16];
        json_t *item;

        snprintf(key, sizeof(key), "%s%s%s%s", rt->path, rt->action ? "?" : "",
                 rt->action ? (strncmp(rt->path, "/rest/", 6) ? "action=" : "~action=") : "",
                 rt->action ? rt->action : "");
        item = json_object_get(paths, key);
        if (!item) {
            item = json_object();
            json_object_set_new(paths, key, item);
        }
        for (size_t k = 0; rt->method[k] && k + 1 < sizeof(method); k++)
            method[k] = (char)(rt->method[k] - 'A' + 'a'), method[k + 1] = '\0';
        json_object_set_new(item, method, operation(rt));
    }
    doc = json_pack("{s:s, s:{s:s, s:s, s:s}, s:o, s:{s:{s:{s:s, s:{s:{s:s}, s:{s:s,"
                    " s:{s:{s:s, s:{s:s}}}}}, s:[s,s]}}, s:{s:{s:s, s:s, s:s}, s:{s:s,"
                    " s:s}}}}",
                    "openapi", "3.0.3",
                    "info", "title", "kvcenter vpxd API", "version", PACKAGE_VERSION,
                    "description", "The vSphere Automation API subset vpxd serves, and"
                    " kvcenter's own resources under /api/kvc/.",
                    "paths", paths,
                    "components", "schemas", "Error", "type", "object", "properties",
                    "error_type", "type", "string", "messages", "type", "array", "items",
                    "type", "object", "properties", "default_message", "type", "string",
                    "required", "error_type", "messages",
                    "securitySchemes", "session", "type", "apiKey", "in", "header",
                    "name", "vmware-api-session-id", "basic", "type", "http", "scheme",
                    "basic");
    if (!doc)
        return api_error(r, 500, "ERROR", "cannot build the OpenAPI document");
    api_reply(r, 200, doc);
}
