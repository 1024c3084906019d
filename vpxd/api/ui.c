/* /ui/: the dashboard's static files (web/, built by npm into web/dist and
 * installed under $(pkgdatadir)/web).  No session is needed for the files
 * themselves: the page logs in through /api/session like any client.
 *
 * Where the files are: $KVC_UI_DIR if set; else web/dist of the build tree
 * the running vpxd binary sits in (so kvcenter-up from a build tree serves
 * that build's dashboard); else the installed copy. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vpxd/api/api.h"

#define UI_MAX_FILE (8 * 1024 * 1024)

static const char *ui_dir(void)
{
    static char dir[PATH_MAX];
    static bool done;
    char exe[PATH_MAX], cand[PATH_MAX + 32];
    ssize_t n;

    if (done)
        return dir;
    done = true;
    const char *env = getenv("KVC_UI_DIR");
    if (env && *env) {
        snprintf(dir, sizeof(dir), "%s", env);
        return dir;
    }
    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';      /* .../build/vpxd */
            snprintf(cand, sizeof(cand), "%s/../web/dist/index.html", exe);
            if (access(cand, R_OK) == 0) {
                cand[strlen(cand) - strlen("/index.html")] = '\0';
                snprintf(dir, sizeof(dir), "%.*s", (int)sizeof(dir) - 1, cand);
                return dir;
            }
        }
    }
    snprintf(dir, sizeof(dir), "%s/web", KVC_PKGDATADIR);
    return dir;
}

static const char *content_type(const char *name)
{
    static const char *const types[][2] = {
        { ".html", "text/html; charset=utf-8" },
        { ".js", "text/javascript; charset=utf-8" },
        { ".css", "text/css; charset=utf-8" },
        { ".png", "image/png" },
        { ".svg", "image/svg+xml" },
        { ".ico", "image/x-icon" },
        { ".json", "application/json" },
    };
    const char *dot = strrchr(name, '.');

    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (!strcmp(dot, types[i][0]))
            return types[i][1];
    return "application/octet-stream";
}

/* A file name we serve: letters, digits, '.', '-', '_', not starting with
 * '.', so nothing outside the folder is reachable. */
static bool safe_name(const char *s)
{
    if (!s || !*s || *s == '.' || strlen(s) > 100)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')
              || *s == '.' || *s == '-' || *s == '_'))
            return false;
    return true;
}

void api_ui_file(struct api_req *r)
{
    const char *url = api_url(r);
    const char *file = NULL, *sub = "";
    char path[PATH_MAX + 256];
    struct stat st;
    int fd;

    if (!strcmp(url, "/") || !strcmp(url, "/ui")) {
        api_header(r, "Location", "/ui/");
        return api_reply_raw(r, 302, "text/plain", strdup("/ui/\n"), 5);
    }
    /* /ui/, /ui/NAME or /ui/vendor/NAME. */
    if (!strcmp(url, "/ui/"))
        file = "index.html";
    else if (!strncmp(url, "/ui/vendor/", 11)) {
        file = url + 11;
        sub = "vendor/";
    } else
        file = url + 4;
    if (!safe_name(file))
        return api_error(r, 404, "NOT_FOUND", "the dashboard has no file %s", url);
    snprintf(path, sizeof(path), "%s/%s%s", ui_dir(), sub, file);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT && !strcmp(file, "index.html"))
            return api_error(r, 404, "NOT_FOUND", "the dashboard is not installed (%s)",
                             ui_dir());
        return api_error(r, 404, "NOT_FOUND", "the dashboard has no file %s", url);
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > UI_MAX_FILE) {
        close(fd);
        return api_error(r, 404, "NOT_FOUND", "the dashboard has no file %s", url);
    }
    size_t len = (size_t)st.st_size, got = 0;
    char *buf = malloc(len ? len : 1);
    while (buf && got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (!buf || got != len) {
        free(buf);
        return api_error(r, 500, "ERROR", "cannot read %s", url);
    }
    /* The files change with every build; let the browser revalidate. */
    api_header(r, "Cache-Control", "no-cache");
    api_header(r, "X-Content-Type-Options", "nosniff");
    api_reply_raw(r, 200, content_type(file), buf, len);
}
