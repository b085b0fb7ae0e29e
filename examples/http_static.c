/*
 * http_static.c -- serves the files under a directory over HTTP/1.1.
 *
 *   http_static [HOST] PORT DIR [--list]
 *       e.g.  http_static 8080 /var/www
 *             curl -v http://127.0.0.1:8080/index.html
 *             curl -r 0-99 http://127.0.0.1:8080/big.bin      (a range: 206)
 *
 * HOST defaults to 127.0.0.1; PORT 0 picks a free port (the "listening on"
 * line tells which).  SIGINT or SIGTERM stops it cleanly (exit status 0).
 *
 *   - GET and HEAD (others: 405); files go out with sendfile
 *     (tide_http_send_file), with Content-Type from the name's extension,
 *     Last-Modified and Accept-Ranges;
 *   - Range: one range ("bytes=A-B", "bytes=A-", "bytes=-N") gets 206 with
 *     Content-Range, one that misses the file 416; several ranges get the
 *     whole file (200), which RFC 9110 allows;
 *   - If-Modified-Since: 304 when the file is not newer;
 *   - a directory serves its index.html; without one, a listing only with
 *     --list (else 403); a directory asked without its trailing slash is
 *     redirected (301);
 *   - nothing outside DIR: the path is percent-decoded, then ".." segments,
 *     NUL bytes and backslashes are refused (400), and the file's real path
 *     (symlinks resolved) must lie inside DIR's (else 403).
 */
#include <tide.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct site {
    char root[PATH_MAX]; /* DIR's real path */
    size_t root_len;
    int list;            /* --list */
};

static const struct {
    const char *ext, *type;
} TYPES[] = {
    {"html", "text/html; charset=utf-8"}, {"htm", "text/html; charset=utf-8"},
    {"css", "text/css"},                  {"js", "text/javascript"},
    {"json", "application/json"},         {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown"},              {"c", "text/plain; charset=utf-8"},
    {"h", "text/plain; charset=utf-8"},   {"png", "image/png"},
    {"jpg", "image/jpeg"},                {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},                 {"svg", "image/svg+xml"},
    {"ico", "image/x-icon"},              {"webp", "image/webp"},
    {"wasm", "application/wasm"},         {"pdf", "application/pdf"},
    {"xml", "application/xml"},           {"mp4", "video/mp4"},
};

static const char *content_type(const char *path)
{
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    size_t i;

    if (dot && (!slash || dot > slash))
        for (i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
            if (!strcasecmp(dot + 1, TYPES[i].ext))
                return TYPES[i].type;
    return "application/octet-stream";
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes path[0..len) into out (cap bytes); refuses NUL, '\\' and
 * any ".." segment (also one spelt %2e%2e).  0 or -1. */
static int decode_path(const char *path, size_t len, char *out, size_t cap)
{
    size_t i, n = 0;
    const char *seg;

    for (i = 0; i < len; i++) {
        char c = path[i];
        if (c == '%') {
            int hi = i + 2 < len ? hexval(path[i + 1]) : -1;
            int lo = hi >= 0 ? hexval(path[i + 2]) : -1;
            if (lo < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        if (c == 0 || c == '\\' || n + 2 > cap)
            return -1;
        out[n++] = c;
    }
    out[n] = 0;
    if (out[0] != '/')
        return -1;
    for (seg = out; seg; seg = strchr(seg + 1, '/')) /* every segment after a '/' */
        if (seg[1] == '.' && seg[2] == '.' && (seg[3] == '/' || seg[3] == 0))
            return -1;
    return 0;
}

static void http_date(time_t t, char *buf, size_t cap)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

static int text(tide_http_exchange *x, int status, const char *msg)
{
    static const tide_http_header ct = {"Content-Type", 12, "text/plain; charset=utf-8", 25};
    return tide_http_respond(x, status, &ct, 1, msg, strlen(msg));
}

/* Appends s to the buffer b (len, cap): as is (esc 0), HTML-escaped (1),
 * or percent-encoded for a URL path segment (2).  0 or -1. */
static int append(char **b, size_t *len, size_t *cap, const char *s, int esc)
{
    for (; *s; s++) {
        const char *rep = NULL;
        char one[2] = {*s, 0}, pct[4];
        unsigned char u = (unsigned char)*s;
        if (esc == 2 && !((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') ||
                          (u >= '0' && u <= '9') || strchr("-._~", u))) {
            snprintf(pct, sizeof pct, "%%%02X", u);
            rep = pct;
        } else if (esc && *s == '<')
            rep = "&lt;";
        else if (esc && *s == '>')
            rep = "&gt;";
        else if (esc && *s == '&')
            rep = "&amp;";
        else if (esc && *s == '"')
            rep = "&quot;";
        else
            rep = one;
        size_t k = strlen(rep);
        if (*len + k + 1 > *cap) {
            size_t nc = *cap ? *cap * 2 : 4096;
            char *nb = realloc(*b, nc);
            if (!nb)
                return -1;
            *b = nb;
            *cap = nc;
        }
        memcpy(*b + *len, rep, k);
        *len += k;
    }
    return 0;
}

static int listing(tide_http_exchange *x, const char *full, const char *urlpath)
{
    static const tide_http_header ct = {"Content-Type", 12, "text/html; charset=utf-8", 24};
    DIR *d = opendir(full);
    struct dirent *e;
    char *b = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;

    if (!d)
        return text(x, 403, "forbidden\n");
    rc |= append(&b, &len, &cap, "<!doctype html><title>", 0);
    rc |= append(&b, &len, &cap, urlpath, 1);
    rc |= append(&b, &len, &cap, "</title><ul>\n", 0);
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        rc |= append(&b, &len, &cap, "<li><a href=\"", 0);
        rc |= append(&b, &len, &cap, e->d_name, 2);
        rc |= append(&b, &len, &cap, e->d_type == DT_DIR ? "/\">" : "\">", 0);
        rc |= append(&b, &len, &cap, e->d_name, 1);
        rc |= append(&b, &len, &cap, "</a>\n", 0);
    }
    closedir(d);
    rc |= append(&b, &len, &cap, "</ul>\n", 0);
    if (rc < 0) {
        free(b);
        return text(x, 500, "out of memory\n");
    }
    rc = tide_http_respond(x, 200, &ct, 1, b, len);
    free(b);
    return rc;
}

/* Parses a single "bytes=" range against size: 1 and [*a, *b] for one that
 * fits, 0 to ignore the field (malformed, several ranges), -1 for 416. */
static int parse_range(const char *v, size_t vlen, off_t size, off_t *a, off_t *b)
{
    char buf[64], *dash, *end;
    long long x, y;

    if (vlen < 7 || vlen >= sizeof buf || strncmp(v, "bytes=", 6))
        return 0;
    memcpy(buf, v + 6, vlen - 6);
    buf[vlen - 6] = 0;
    if (strchr(buf, ','))
        return 0;
    dash = strchr(buf, '-');
    if (!dash)
        return 0;
    *dash = 0;
    if (!buf[0]) { /* suffix: the last N bytes */
        y = strtoll(dash + 1, &end, 10);
        if (*end || !dash[1] || y < 0)
            return 0;
        if (y == 0 || size == 0)
            return -1;
        *a = y >= size ? 0 : size - y;
        *b = size - 1;
        return 1;
    }
    x = strtoll(buf, &end, 10);
    if (*end || x < 0)
        return 0;
    if (dash[1]) {
        y = strtoll(dash + 1, &end, 10);
        if (*end || y < x)
            return 0;
    } else {
        y = size - 1;
    }
    if (x >= size)
        return -1;
    *a = x;
    *b = y >= size ? size - 1 : y;
    return 1;
}

static int serve(tide_http_exchange *x, void *arg)
{
    const struct site *site = arg;
    const tide_http_request *r = tide_http_exchange_request(x);
    char rel[PATH_MAX], full[PATH_MAX * 2], real[PATH_MAX], lm[64], cr[96], lenbuf[32];
    const char *ims, *range;
    size_t ims_len, range_len;
    tide_http_header h[5];
    struct stat st;
    off_t a = 0, b = 0;
    int fd, rc, nh = 0, status = 200, rr = 0;

    if (r->method_id != TIDE_HTTP_GET && r->method_id != TIDE_HTTP_HEAD) {
        static const tide_http_header allow = {"Allow", 5, "GET, HEAD", 9};
        return tide_http_respond(x, 405, &allow, 1, "method not allowed\n", 19);
    }
    if (!r->path || decode_path(r->path, r->path_len, rel, sizeof rel) < 0)
        return text(x, 400, "bad path\n");
    snprintf(full, sizeof full, "%s%s", site->root, rel);
    if (!realpath(full, real))
        return text(x, errno == ENOENT || errno == ENOTDIR ? 404 : 403, "not found\n");
    if (strncmp(real, site->root, site->root_len) ||
        (real[site->root_len] != '/' && real[site->root_len] != 0))
        return text(x, 403, "forbidden\n"); /* a symlink out of DIR */
    if (stat(real, &st) < 0)
        return text(x, 404, "not found\n");
    if (S_ISDIR(st.st_mode)) {
        if (rel[strlen(rel) - 1] != '/') {
            char loc[PATH_MAX + 2];
            tide_http_header l = {"Location", 8, loc, 0};
            l.value_len = (size_t)snprintf(loc, sizeof loc, "%.*s/", (int)r->path_len, r->path);
            return tide_http_respond(x, 301, &l, 1, "moved\n", 6);
        }
        snprintf(full, sizeof full, "%s/index.html", real);
        if (stat(full, &st) < 0 || !S_ISREG(st.st_mode))
            return site->list ? listing(x, real, rel) : text(x, 403, "forbidden\n");
        if (strlen(full) >= sizeof real)
            return text(x, 414, "path too long\n");
        memcpy(real, full, strlen(full) + 1);
    }
    if (!S_ISREG(st.st_mode))
        return text(x, 403, "forbidden\n");
    http_date(st.st_mtime, lm, sizeof lm);
    ims = tide_http_get_header(x, "If-Modified-Since", &ims_len);
    if (ims && ims_len < sizeof cr) {
        struct tm tm;
        char *end;
        memset(&tm, 0, sizeof tm);
        memcpy(cr, ims, ims_len);
        cr[ims_len] = 0;
        end = strptime(cr, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        if (end && !*end && st.st_mtime <= timegm(&tm)) {
            tide_http_header m = {"Last-Modified", 13, lm, strlen(lm)};
            return tide_http_respond(x, 304, &m, 1, NULL, 0);
        }
    }
    fd = open(real, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return text(x, 403, "forbidden\n");
    h[nh++] = (tide_http_header){"Content-Type", 12, content_type(real), 0};
    h[0].value_len = strlen(h[0].value);
    h[nh++] = (tide_http_header){"Last-Modified", 13, lm, strlen(lm)};
    h[nh++] = (tide_http_header){"Accept-Ranges", 13, "bytes", 5};
    range = tide_http_get_header(x, "Range", &range_len);
    if (range)
        rr = parse_range(range, range_len, st.st_size, &a, &b);
    if (rr < 0) {
        int k = snprintf(cr, sizeof cr, "bytes */%lld", (long long)st.st_size);
        tide_http_header e[2] = {{"Content-Type", 12, "text/plain; charset=utf-8", 25},
                                 {"Content-Range", 13, cr, (size_t)k}};
        close(fd);
        return tide_http_respond(x, 416, e, 2, "range not satisfiable\n", 22);
    }
    if (rr > 0) {
        int k = snprintf(cr, sizeof cr, "bytes %lld-%lld/%lld", (long long)a, (long long)b,
                         (long long)st.st_size);
        h[nh++] = (tide_http_header){"Content-Range", 13, cr, (size_t)k};
        status = 206;
    } else {
        a = 0;
        b = st.st_size - 1;
    }
    (void)lenbuf;
    rc = tide_http_send_file(x, status, h, (size_t)nh, fd, a, (size_t)(b - a + 1));
    close(fd);
    return rc;
}

struct config {
    const char *host;
    int port;
    struct site site;
};

static int http_main(void *arg)
{
    struct config *cfg = arg;
    tide_http_server_opts opts;
    tide_http_server_stats st;
    tide_http_server *srv;
    sigset_t stop;
    int rc, sig;

    tide_http_server_opts_init(&opts);
    opts.server.backlog = 4096;
    opts.server.stack_size = 128 * 1024;
    rc = tide_http_serve(cfg->host, cfg->port, serve, &cfg->site, &opts, &srv);
    if (rc < 0) {
        fprintf(stderr, "http_static: cannot listen on %s:%d: %s\n", cfg->host, cfg->port,
                tide_strerror(rc));
        return 1;
    }
    printf("http_static: serving %s, listening on http://%s:%d/ (Ctrl-C to stop)\n",
           cfg->site.root, cfg->host, tide_http_server_port(srv));
    fflush(stdout);
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sig = tide_signal_wait(&stop);
    tide_http_server_get_stats(srv, &st);
    rc = tide_http_server_close(srv, TIDE_SERVER_CANCEL);
    printf("http_static: %s: %llu connections, %llu requests, %llu bad requests\n",
           sig > 0 ? strsignal(sig) : tide_strerror(sig), (unsigned long long)st.connections,
           (unsigned long long)st.requests, (unsigned long long)st.errors);
    return rc < 0 ? 1 : 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: http_static [HOST] PORT DIR [--list]\n"
                    "  Serves the files under DIR (GET, HEAD, ranges, If-Modified-Since).\n"
                    "  --list: list directories that have no index.html.  HOST defaults to\n"
                    "  127.0.0.1; PORT 0 picks a free port.  Stops on SIGINT or SIGTERM.\n");
    return 2;
}

static int parse_port(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return (*s && !*end && v >= 0 && v <= 65535) ? (int)v : -1;
}

int main(int argc, char **argv)
{
    static struct config cfg;
    const char *pos[3];
    int npos = 0, i, rc;
    sigset_t stop;

    cfg.host = "127.0.0.1";
    cfg.port = -1;
    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--list"))
            cfg.site.list = 1;
        else if (argv[i][0] != '-' && npos < 3)
            pos[npos++] = argv[i];
        else
            return usage();
    }
    if (npos == 2) {
        cfg.port = parse_port(pos[0]);
    } else if (npos == 3) {
        cfg.host = pos[0];
        cfg.port = parse_port(pos[1]);
    }
    if (cfg.port < 0)
        return usage();
    if (!realpath(pos[npos - 1], cfg.site.root)) {
        fprintf(stderr, "http_static: %s: %s\n", pos[npos - 1], strerror(errno));
        return 1;
    }
    cfg.site.root_len = strlen(cfg.site.root);
    if (cfg.site.root_len == 1) /* "/": every path is inside */
        cfg.site.root_len = 0;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    rc = tide_run(http_main, &cfg);
    if (rc < 0) {
        fprintf(stderr, "http_static: %s\n", tide_strerror(rc));
        return 1;
    }
    return rc;
}
