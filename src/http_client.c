/*
 * HTTP/1.1 client: requests over pooled keep-alive connections
 * (docs/http_client.md).
 *
 * Shape: a client holds one entry per origin (scheme, host, port) with a
 * semaphore of request slots and a LIFO list of idle connections (the most
 * recently used first, so the oldest, the likeliest to be stale, sit at
 * the tail where the idle sweep cuts them).  A request takes a slot, an
 * idle connection or a new one, writes its head (and body), and parses the
 * response head with tide_http_parse_response out of the stream's buffer.
 * The response object keeps the connection until it is freed; only a
 * response read to its end, without error, with keep-alive on both sides,
 * gives its connection back.  Response objects (head buffer, header
 * arrays, trailer buffer in one block) are recycled per client, so the
 * steady state of a keep-alive request allocates nothing.
 *
 * Failure is always the same move: close the connection, keep nothing.
 * A cancel scope's deadline or a cancellation anywhere (connect, write,
 * head, body) thus never leaves a half-read response in the pool.
 */
#include "tide.h"
#include "tide_int.h"
#include "http_client_int.h"

#ifdef TIDE__HAVE_TLS
#include "tide/tls.h"
#endif

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define HC_MAGIC 0x48434c52u /* a live response */
#define HC_DEAD 0xdeadbeefu  /* a freed (recycled) one */
#define HC_MAX_TRAILERS 32
#define HC_FREE_RESPS 32                 /* recycled response objects kept */
#define HC_REDIRECT_DRAIN (64 * 1024)    /* a 3xx body longer than this closes */
#define HC_BODY_PIECE (64 * 1024)        /* fixed bodies are written in pieces */
#define HC_STALE 1                       /* internal: a reused connection was closed */

typedef struct hc_conn {
    struct hc_conn *next; /* in its host's idle list */
    tide_stream *s;
    int64_t idle_since; /* tide_now() when pooled */
    uint32_t uses;      /* responses it carried before this one */
} hc_conn;

typedef struct hc_host {
    struct hc_host *next;
    int tls, port;
    hc_conn *idle; /* most recently pooled first */
    size_t nidle;
    tide_sem slots; /* requests in flight: max_per_host */
    char name[];    /* host, NUL-terminated */
} hc_host;

struct tide_http_client {
    tide_http_client_opts o;
    hc_host *hosts;
    tide_http_resp *free_resps; /* recycled, linked by next_free */
    size_t nfree;
    size_t live; /* responses not freed + requests running */
    uint64_t connects, reuses;
};

struct tide_http_resp {
    unsigned magic;
    tide_http_client *c;
    tide_http_resp *next_free;
    hc_host *host; /* its slot is held while host is set */
    hc_conn *conn;
    tide_http_response p;
    tide_http_header *hdrs;     /* [o.max_headers] */
    tide_http_header *trailers; /* [HC_MAX_TRAILERS] */
    size_t ntrailers;
    char *head; /* [o.max_head]: request head, then response head */
    char *trailer_buf; /* [TIDE_HTTP_TRAILERS_DEFAULT] */
    tide_http_chunked dec;
    uint64_t remaining; /* BODY_LENGTH: bytes left */
    int body_done;      /* the body was read to its end */
    int keep;           /* keep-alive allowed by both sides */
    int err;            /* sticky read error */
    int reused;
    int is_head;
    const char *url;
    char *url_copy; /* after a redirect */
};

/* ------------------------------------------------------------------ URLs */

static int is_tchar(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return 1;
    return ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static int is_host_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

int tide_http_url_parse(const char *url, tide_http_url *u)
{
    const char *p, *a, *ae, *h, *he;
    long port = 0;
    int given = 0;

    if (!url || !u)
        return -EINVAL;
    memset(u, 0, sizeof *u);
    if (strncasecmp(url, "http://", 7) == 0) {
        p = url + 7;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        u->tls = 1;
        p = url + 8;
    } else {
        return -EINVAL;
    }
    a = p;
    while (*p && *p != '/' && *p != '?' && *p != '#')
        p++;
    ae = p;
    if (a == ae)
        return -EINVAL;
    if (*a == '[') {
        h = a + 1;
        he = h;
        while (he < ae && *he != ']') {
            unsigned char ch = (unsigned char)*he;
            if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
                  (ch >= 'A' && ch <= 'F') || ch == ':' || ch == '.'))
                return -EINVAL;
            he++;
        }
        if (he == ae || he == h || memchr(h, ':', (size_t)(he - h)) == NULL)
            return -EINVAL;
        a = he + 1; /* after ']' */
    } else {
        h = a;
        he = h;
        while (he < ae && *he != ':') {
            if (!is_host_char((unsigned char)*he))
                return -EINVAL; /* '@' (userinfo), spaces, controls... */
            he++;
        }
        if (he == h)
            return -EINVAL;
        a = he;
    }
    if ((size_t)(he - h) > 253)
        return -EINVAL;
    if (a < ae) {
        if (*a != ':')
            return -EINVAL;
        a++;
        if (a < ae) {
            if (ae - a > 5)
                return -EINVAL;
            for (; a < ae; a++) {
                if (*a < '0' || *a > '9')
                    return -EINVAL;
                port = port * 10 + (*a - '0');
            }
            if (port < 1 || port > 65535)
                return -EINVAL;
            given = 1;
        }
    }
    u->host = h;
    u->host_len = (size_t)(he - h);
    u->port = given ? (int)port : (u->tls ? 443 : 80);
    u->port_given = given;
    /* Path and query, up to a fragment; printable ASCII only. */
    for (p = ae; *p && *p != '#'; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch <= 0x20 || ch >= 0x7f)
            return -EINVAL;
    }
    for (const char *q = p; *q; q++) {
        unsigned char ch = (unsigned char)*q;
        if (ch <= 0x20 || ch >= 0x7f)
            return -EINVAL;
    }
    if (p == ae) {
        u->path = "/";
        u->path_len = 1;
    } else {
        u->path = ae;
        u->path_len = (size_t)(p - ae);
    }
    return 0;
}

/* RFC 3986 section 5.2.4 on path[0..len) (no query), into out (room for
 * len + 1 bytes).  Returns the length written. */
static size_t remove_dots(const char *in, size_t len, char *out)
{
    size_t i = 0, o = 0;

    while (i < len) {
        size_t rest = len - i;
        const char *s = in + i;
        if (rest >= 3 && memcmp(s, "../", 3) == 0) {
            i += 3;
        } else if (rest >= 2 && memcmp(s, "./", 2) == 0) {
            i += 2;
        } else if (rest >= 3 && memcmp(s, "/./", 3) == 0) {
            i += 2;
        } else if (rest == 2 && memcmp(s, "/.", 2) == 0) {
            i += 1;
            out[o++] = '/';
            i += 1;
        } else if ((rest >= 4 && memcmp(s, "/../", 4) == 0) || (rest == 3 && memcmp(s, "/..", 3) == 0)) {
            while (o > 0 && out[o - 1] != '/')
                o--;
            if (o > 0)
                o--; /* the '/' before the dropped segment */
            if (rest == 3) {
                out[o++] = '/';
                i += 3;
            } else {
                i += 3; /* leave the last '/' as the next input's start */
            }
        } else if ((rest == 1 && s[0] == '.') || (rest == 2 && memcmp(s, "..", 2) == 0)) {
            i += rest;
        } else {
            size_t k = (s[0] == '/') ? 1 : 0;
            while (k < rest && s[k] != '/')
                k++;
            memcpy(out + o, s, k);
            o += k;
            i += k;
        }
    }
    return o;
}

/* 1 if loc[0..len) starts with a scheme (a ':' before any '/', '?', '#'). */
static int has_scheme(const char *loc, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (loc[i] == ':')
            return i > 0;
        if (loc[i] == '/' || loc[i] == '?' || loc[i] == '#')
            return 0;
    }
    return 0;
}

/* Resolves loc[0..len) (a Location value) against base (parsed as bu): a
 * malloc'd absolute URL, or NULL (-ENOMEM in *err, or -EBADMSG for a
 * Location that is not a URL reference we can follow). */
static char *resolve_url(const char *base, const tide_http_url *bu, const char *loc, size_t len,
                         int *err)
{
    const char *scheme = bu->tls ? "https:" : "http:";
    const char *bpath = bu->path;
    size_t bplen = bu->path_len, origin_len, dirlen = 0, qlen;
    char *out, *p;
    size_t cap;

    *err = -EBADMSG;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)loc[i] <= 0x20 || (unsigned char)loc[i] >= 0x7f)
            return NULL;
    /* The base's "scheme://authority". */
    origin_len = (size_t)(strchr(base, ':') - base) + 3;
    while (base[origin_len] && !strchr("/?#", base[origin_len]))
        origin_len++;
    /* The base path without its query, and its directory. */
    qlen = 0;
    while (qlen < bplen && bpath[qlen] != '?')
        qlen++;
    if (qlen == 0) {
        bpath = "/";
        qlen = 1;
    }
    for (size_t i = 0; i < qlen; i++)
        if (bpath[i] == '/')
            dirlen = i + 1;

    cap = strlen(scheme) + origin_len + qlen + len + 8;
    out = tide__malloc(cap);
    if (!out) {
        *err = -ENOMEM;
        return NULL;
    }
    if (len >= 7 && (strncasecmp(loc, "http://", 7) == 0 || (len >= 8 && strncasecmp(loc, "https://", 8) == 0))) {
        memcpy(out, loc, len);
        out[len] = 0;
    } else if (has_scheme(loc, len)) {
        tide__free(out); /* another scheme (mailto:, ftp:...) */
        return NULL;
    } else if (len >= 2 && loc[0] == '/' && loc[1] == '/') {
        snprintf(out, cap, "%s%.*s", scheme, (int)len, loc);
    } else {
        /* Same origin: build origin + path, then drop dot segments. */
        char *tmp = tide__malloc(qlen + len + 2);
        size_t tl = 0, plen, q;
        if (!tmp) {
            tide__free(out);
            *err = -ENOMEM;
            return NULL;
        }
        if (len == 0) {
            memcpy(tmp, bpath, qlen);
            tl = qlen;
        } else if (loc[0] == '/') {
            memcpy(tmp, loc, len);
            tl = len;
        } else if (loc[0] == '?') {
            memcpy(tmp, bpath, qlen);
            memcpy(tmp + qlen, loc, len);
            tl = qlen + len;
        } else {
            memcpy(tmp, bpath, dirlen);
            memcpy(tmp + dirlen, loc, len);
            tl = dirlen + len;
        }
        /* Drop a fragment, split the query off. */
        for (q = 0; q < tl && tmp[q] != '#'; q++)
            ;
        tl = q;
        for (plen = 0; plen < tl && tmp[plen] != '?'; plen++)
            ;
        memcpy(out, base, origin_len);
        p = out + origin_len;
        p += remove_dots(tmp, plen, p);
        if (p == out + origin_len)
            *p++ = '/';
        memcpy(p, tmp + plen, tl - plen);
        p += tl - plen;
        *p = 0;
        tide__free(tmp);
    }
    return out;
}

char *tide__http_url_resolve(const char *base, const char *loc, size_t len, int *err)
{
    tide_http_url bu;
    int rc = tide_http_url_parse(base, &bu);
    if (rc < 0 || (!loc && len)) {
        *err = -EINVAL;
        return NULL;
    }
    return resolve_url(base, &bu, loc ? loc : "", len, err);
}

/* --------------------------------------------------------------- the pool */

void tide_http_client_opts_init(tide_http_client_opts *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->max_per_host = 16;
    o->max_idle_per_host = 8;
    o->idle_timeout_ms = 30000;
    o->max_head = TIDE_HTTP_MAX_HEAD_DEFAULT;
    o->max_headers = 64;
}

void tide_http_req_opts_init(tide_http_req_opts *o)
{
    if (o)
        memset(o, 0, sizeof *o);
}

int tide_http_client_new(tide_http_client **cp, const tide_http_client_opts *o)
{
    tide_http_client *c;
    tide_http_client_opts d;

    if (!cp)
        return -EINVAL;
    *cp = NULL;
    tide_http_client_opts_init(&d);
    if (o) {
        if (o->idle_timeout_ms < 0)
            return -EINVAL;
        if (o->max_per_host)
            d.max_per_host = o->max_per_host;
        if (o->max_idle_per_host)
            d.max_idle_per_host = o->max_idle_per_host;
        else if (d.max_idle_per_host > d.max_per_host)
            d.max_idle_per_host = d.max_per_host;
        if (o->idle_timeout_ms)
            d.idle_timeout_ms = o->idle_timeout_ms;
        if (o->max_head)
            d.max_head = o->max_head;
        if (o->max_headers)
            d.max_headers = o->max_headers;
        d.tls_ctx = o->tls_ctx;
    }
    if (d.max_idle_per_host > d.max_per_host || d.max_per_host > (size_t)0x7fffffff ||
        d.max_head < 64 || d.max_head > (size_t)64 * 1024 || d.max_headers > 4096)
        return -EINVAL;
    c = tide__calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->o = d;
    *cp = c;
    return 0;
}

static void conn_close(hc_conn *k)
{
    if (!k)
        return;
    (void)tide_stream_close(k->s);
    tide__free(k);
}

int tide_http_client_free(tide_http_client *c)
{
    if (!c)
        return 0;
    if (c->live)
        return -EBUSY;
    while (c->hosts) {
        hc_host *h = c->hosts;
        c->hosts = h->next;
        while (h->idle) {
            hc_conn *k = h->idle;
            h->idle = k->next;
            conn_close(k);
        }
        tide__free(h);
    }
    while (c->free_resps) {
        tide_http_resp *r = c->free_resps;
        c->free_resps = r->next_free;
        tide__free(r);
    }
    tide__free(c);
    return 0;
}

uint64_t tide_http_client_connects(const tide_http_client *c)
{
    return c ? c->connects : 0;
}

uint64_t tide_http_client_reuses(const tide_http_client *c)
{
    return c ? c->reuses : 0;
}

size_t tide_http_client_idle(const tide_http_client *c)
{
    size_t n = 0;
    if (c)
        for (const hc_host *h = c->hosts; h; h = h->next)
            n += h->nidle;
    return n;
}

static hc_host *host_get(tide_http_client *c, const tide_http_url *u)
{
    hc_host *h;
    for (h = c->hosts; h; h = h->next)
        if (h->tls == u->tls && h->port == u->port && strlen(h->name) == u->host_len &&
            strncasecmp(h->name, u->host, u->host_len) == 0)
            return h;
    h = tide__calloc(1, sizeof *h + u->host_len + 1);
    if (!h)
        return NULL;
    h->tls = u->tls;
    h->port = u->port;
    memcpy(h->name, u->host, u->host_len);
    h->name[u->host_len] = 0;
    (void)tide_sem_init(&h->slots, (long)c->o.max_per_host);
    h->next = c->hosts;
    c->hosts = h;
    return h;
}

/* An idle connection to h, or NULL; those idle too long are closed first. */
static hc_conn *pool_take(tide_http_client *c, hc_host *h)
{
    int64_t now = tide_now();
    hc_conn **pp = &h->idle, *k;
    size_t n = 0;

    while (*pp && now - (*pp)->idle_since < c->o.idle_timeout_ms) {
        pp = &(*pp)->next;
        n++;
    }
    k = *pp; /* it and all after it (older) expired */
    *pp = NULL;
    h->nidle = n;
    while (k) {
        hc_conn *next = k->next;
        conn_close(k);
        k = next;
    }
    k = h->idle;
    if (k) {
        h->idle = k->next;
        h->nidle--;
        k->next = NULL;
    }
    return k;
}

static void pool_put(tide_http_client *c, hc_host *h, hc_conn *k)
{
    if (h->nidle >= c->o.max_idle_per_host) {
        conn_close(k);
        return;
    }
    k->uses++;
    k->idle_since = tide_now();
    k->next = h->idle;
    h->idle = k;
    h->nidle++;
}

static int conn_open(tide_http_client *c, hc_host *h, hc_conn **out)
{
    tide_stream *s = NULL;
    hc_conn *k;
    int rc;

    k = tide__calloc(1, sizeof *k);
    if (!k)
        return -ENOMEM;
    if (h->tls) {
#ifdef TIDE__HAVE_TLS
        tide_tls_opts to;
        tide_tls_opts_init(&to);
        to.ctx = c->o.tls_ctx;
        rc = tide_open_tls_connection(h->name, h->port, &to, &s);
#else
        rc = -EPROTONOSUPPORT;
#endif
    } else {
        rc = tide_open_connection(h->name, h->port, &s);
    }
    if (rc < 0) {
        tide__free(k);
        return rc;
    }
    c->connects++;
    k->s = s;
    *out = k;
    return 0;
}

/* ------------------------------------------------------------ responses */

static tide_http_resp *resp_get(tide_http_client *c)
{
    tide_http_resp *r = c->free_resps;
    if (r) {
        c->free_resps = r->next_free;
        c->nfree--;
    } else {
        size_t hsz = c->o.max_headers * sizeof(tide_http_header);
        size_t tsz = HC_MAX_TRAILERS * sizeof(tide_http_header);
        char *b = tide__malloc(sizeof *r + hsz + tsz + c->o.max_head + TIDE_HTTP_TRAILERS_DEFAULT);
        if (!b)
            return NULL;
        r = (tide_http_resp *)(void *)b;
        b += sizeof *r;
        r->hdrs = (tide_http_header *)(void *)b;
        r->trailers = (tide_http_header *)(void *)(b + hsz);
        r->head = b + hsz + tsz;
        r->trailer_buf = r->head + c->o.max_head;
    }
    r->magic = HC_MAGIC;
    r->c = c;
    r->next_free = NULL;
    r->host = NULL;
    r->conn = NULL;
    r->ntrailers = 0;
    r->remaining = 0;
    r->body_done = 0;
    r->keep = 0;
    r->err = 0;
    r->reused = 0;
    r->is_head = 0;
    r->url = NULL;
    r->url_copy = NULL;
    tide_http_response_init(&r->p, r->hdrs, c->o.max_headers);
    return r;
}

/* Gives the connection back (or closes it) and the host slot. */
static void resp_release_conn(tide_http_resp *r)
{
    if (r->conn) {
        /* Bytes already read past the response (nobody asked for them)
         * would be taken for the next response's head: not pooled. */
        if (r->body_done && r->keep && !r->err && tide_stream_buffered(r->conn->s) == 0)
            pool_put(r->c, r->host, r->conn);
        else
            conn_close(r->conn);
        r->conn = NULL;
    }
    if (r->host) {
        (void)tide_sem_release(&r->host->slots);
        r->host = NULL;
    }
}

static void resp_recycle(tide_http_resp *r)
{
    tide_http_client *c = r->c;
    resp_release_conn(r);
    tide__free(r->url_copy);
    r->url_copy = NULL;
    r->magic = HC_DEAD;
    c->live--;
    if (c->nfree < HC_FREE_RESPS) {
        r->next_free = c->free_resps;
        c->free_resps = r;
        c->nfree++;
    } else {
        tide__free(r);
    }
}

int tide_http_resp_free(tide_http_resp *r)
{
    if (!r)
        return 0;
    if (r->magic != HC_MAGIC)
        return -EINVAL;
    resp_recycle(r);
    return 0;
}

#define RESP_OK(r) ((r) && (r)->magic == HC_MAGIC)

int tide_http_resp_status(const tide_http_resp *r)
{
    return RESP_OK(r) ? r->p.status : -EINVAL;
}

int tide_http_resp_version(const tide_http_resp *r)
{
    return RESP_OK(r) ? r->p.version_minor : -EINVAL;
}

const char *tide_http_resp_reason(const tide_http_resp *r, size_t *len)
{
    if (len)
        *len = RESP_OK(r) ? r->p.reason_len : 0;
    if (!RESP_OK(r) || !r->p.reason)
        return "";
    return r->p.reason;
}

const char *tide_http_resp_header(const tide_http_resp *r, const char *name, size_t *len)
{
    if (!RESP_OK(r) || !name)
        return NULL;
    return tide_http_header_get(r->hdrs, r->p.num_headers, name, len);
}

const tide_http_header *tide_http_resp_headers(const tide_http_resp *r, size_t *n)
{
    if (n)
        *n = RESP_OK(r) ? r->p.num_headers : 0;
    return RESP_OK(r) ? r->hdrs : NULL;
}

const char *tide_http_resp_trailer(const tide_http_resp *r, const char *name, size_t *len)
{
    if (!RESP_OK(r) || !name)
        return NULL;
    return tide_http_header_get(r->trailers, r->ntrailers, name, len);
}

int64_t tide_http_resp_content_length(const tide_http_resp *r)
{
    if (!RESP_OK(r))
        return -1;
    if (r->p.body == TIDE_HTTP_BODY_NONE)
        return 0;
    if (r->p.body == TIDE_HTTP_BODY_LENGTH)
        return (int64_t)r->p.content_length;
    return -1;
}

const char *tide_http_resp_url(const tide_http_resp *r)
{
    return RESP_OK(r) ? r->url : NULL;
}

int tide_http_resp_reused(const tide_http_resp *r)
{
    return RESP_OK(r) ? r->reused : 0;
}

static ssize_t resp_fail(tide_http_resp *r, int err)
{
    r->err = err;
    r->keep = 0;
    return err;
}

ssize_t tide_http_resp_read(tide_http_resp *r, void *buf, size_t cap)
{
    ssize_t n;

    if (!RESP_OK(r) || (!buf && cap))
        return -EINVAL;
    if (r->err)
        return r->err;
    if (r->body_done || cap == 0)
        return 0;
    if (!r->conn)
        return -EBADF;
    switch (r->p.body) {
    case TIDE_HTTP_BODY_LENGTH:
        if (cap > r->remaining)
            cap = (size_t)r->remaining;
        n = tide_stream_read(r->conn->s, buf, cap);
        if (n < 0)
            return resp_fail(r, (int)n);
        if (n == 0)
            return resp_fail(r, -EPROTO);
        r->remaining -= (uint64_t)n;
        if (r->remaining == 0)
            r->body_done = 1;
        return n;
    case TIDE_HTTP_BODY_UNTIL_CLOSE:
        n = tide_stream_read(r->conn->s, buf, cap);
        if (n < 0)
            return resp_fail(r, (int)n);
        if (n == 0)
            r->body_done = 1;
        return n;
    case TIDE_HTTP_BODY_CHUNKED:
        for (;;) {
            size_t used = 0, made = 0;
            int rc;
            n = tide_stream_read(r->conn->s, buf, cap);
            if (n < 0)
                return resp_fail(r, (int)n);
            if (n == 0)
                return resp_fail(r, -EPROTO);
            rc = tide_http_chunked_decode(&r->dec, buf, (size_t)n, &used, buf, cap, &made);
            if (rc < 0) {
                resp_fail(r, -EBADMSG);
                if (made > 0)
                    return (ssize_t)made; /* the data before the fault; the error next */
                return -EBADMSG;
            }
            if (rc == 1) {
                r->body_done = 1;
                if (used != (size_t)n)
                    r->keep = 0; /* bytes after the body nobody asked for */
                if (r->dec.trailer_len > 2) {
                    size_t nt = 0;
                    if (tide_http_parse_fields(r->trailer_buf, r->dec.trailer_len, r->trailers,
                                               HC_MAX_TRAILERS, &nt, NULL) < 0)
                        return resp_fail(r, -EBADMSG);
                    r->ntrailers = nt;
                }
            }
            if (made > 0 || rc == 1)
                return (ssize_t)made;
        }
    default:
        r->body_done = 1;
        return 0;
    }
}

ssize_t tide_http_resp_read_all(tide_http_resp *r, char **out, size_t max)
{
    char *b = NULL;
    size_t len = 0, cap;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!RESP_OK(r))
        return -EINVAL;
    if (r->err)
        return r->err;
    if (r->p.body == TIDE_HTTP_BODY_LENGTH && !r->body_done) {
        if (max && r->remaining > max)
            return -EFBIG;
        cap = r->remaining > (1u << 20) ? (1u << 20) : (size_t)r->remaining;
        cap += 1;
    } else {
        cap = 4096;
    }
    if (max && cap > max + 1)
        cap = max + 1;
    b = tide__malloc(cap);
    if (!b)
        return -ENOMEM;
    for (;;) {
        size_t room;
        ssize_t n;
        if (r->body_done)
            break;
        if (len + 1 == cap) {
            size_t ncap = cap * 2;
            char *nb;
            if (max && ncap > max + 2)
                ncap = max + 2; /* room for one byte past max: the overflow shows */
            if (ncap <= cap) {
                tide__free(b);
                return -EFBIG;
            }
            nb = tide__realloc(b, ncap);
            if (!nb) {
                tide__free(b);
                return -ENOMEM;
            }
            b = nb;
            cap = ncap;
        }
        room = cap - 1 - len;
        n = tide_http_resp_read(r, b + len, room);
        if (n < 0) {
            tide__free(b);
            return n;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (max && len > max) {
            tide__free(b);
            r->keep = 0;
            return -EFBIG;
        }
    }
    b[len] = 0;
    *out = b;
    return (ssize_t)len;
}

/* -------------------------------------------------------------- requests */

typedef struct hc_req {
    const char *method;
    const tide_http_header *headers;
    size_t nheaders;
    const void *body;
    size_t body_len;
    tide_http_body_fn body_fn;
    void *body_arg;
    int strip_auth; /* another origin: no Authorization / Cookie */
    int conn_close; /* the caller asked for Connection: close */
    int has_host;
} hc_req;

typedef struct hc_buf {
    char *p;
    size_t len, cap;
    int over;
} hc_buf;

static void put(hc_buf *b, const void *s, size_t n)
{
    if (b->over || n > b->cap - b->len) {
        b->over = 1;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void puts_(hc_buf *b, const char *s)
{
    put(b, s, strlen(s));
}

static int is_idempotent(const char *m)
{
    return !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "PUT") ||
           !strcmp(m, "DELETE") || !strcmp(m, "OPTIONS") || !strcmp(m, "TRACE");
}

static int name_is(const tide_http_header *h, const char *name)
{
    size_t n = strlen(name);
    return h->name_len == n && strncasecmp(h->name, name, n) == 0;
}

static int write_body(tide_stream *s, const hc_req *q, char *buf, size_t cap)
{
    ssize_t w;
    int rc;

    if (q->body) {
        const char *p = q->body;
        size_t left = q->body_len;
        while (left) {
            size_t n = left > HC_BODY_PIECE ? HC_BODY_PIECE : left;
            w = tide_stream_write(s, p, n);
            if (w < 0)
                return (int)w;
            rc = tide_stream_drain(s);
            if (rc < 0)
                return rc;
            p += n;
            left -= n;
        }
    } else if (q->body_fn) {
        for (;;) {
            char line[24];
            struct iovec iov[3];
            ssize_t n = q->body_fn(q->body_arg, buf, cap);
            if (n < 0)
                return (int)n;
            if ((size_t)n > cap)
                return -EINVAL;
            if (n == 0)
                break;
            iov[0].iov_base = line;
            iov[0].iov_len = (size_t)snprintf(line, sizeof line, "%zx\r\n", (size_t)n);
            iov[1].iov_base = buf;
            iov[1].iov_len = (size_t)n;
            iov[2].iov_base = (void *)"\r\n";
            iov[2].iov_len = 2;
            w = tide_stream_writev(s, iov, 3);
            if (w < 0)
                return (int)w;
            rc = tide_stream_drain(s);
            if (rc < 0)
                return rc;
        }
        w = tide_stream_write(s, "0\r\n\r\n", 5);
        if (w < 0)
            return (int)w;
    }
    return 0;
}

/* Writes the request head and body on r->conn. */
static int send_request(tide_http_resp *r, const tide_http_url *u, const hc_req *q)
{
    hc_buf b = {r->head, 0, r->c->o.max_head, 0};
    char num[32];
    ssize_t w;

    puts_(&b, q->method);
    put(&b, " ", 1);
    if (u->path[0] != '/')
        put(&b, "/", 1);
    put(&b, u->path, u->path_len);
    puts_(&b, " HTTP/1.1\r\n");
    if (!q->has_host) {
        int v6 = memchr(u->host, ':', u->host_len) != NULL;
        puts_(&b, "Host: ");
        if (v6)
            put(&b, "[", 1);
        put(&b, u->host, u->host_len);
        if (v6)
            put(&b, "]", 1);
        if (u->port_given && u->port != (u->tls ? 443 : 80)) {
            snprintf(num, sizeof num, ":%d", u->port);
            puts_(&b, num);
        }
        puts_(&b, "\r\n");
    }
    for (size_t i = 0; i < q->nheaders; i++) {
        const tide_http_header *h = &q->headers[i];
        if (q->strip_auth && (name_is(h, "authorization") || name_is(h, "cookie")))
            continue;
        put(&b, h->name, h->name_len);
        put(&b, ": ", 2);
        put(&b, h->value, h->value_len);
        put(&b, "\r\n", 2);
    }
    if (q->body_fn) {
        puts_(&b, "Transfer-Encoding: chunked\r\n");
    } else if (q->body || !strcmp(q->method, "POST") || !strcmp(q->method, "PUT") ||
               !strcmp(q->method, "PATCH")) {
        snprintf(num, sizeof num, "Content-Length: %zu\r\n", q->body ? q->body_len : 0);
        puts_(&b, num);
    }
    put(&b, "\r\n", 2);
    if (b.over)
        return -E2BIG;
    if (q->body && q->body_len <= HC_BODY_PIECE) {
        /* Head and a small body in one syscall. */
        struct iovec iov[2];
        iov[0].iov_base = b.p;
        iov[0].iov_len = b.len;
        iov[1].iov_base = (void *)q->body;
        iov[1].iov_len = q->body_len;
        w = tide_stream_writev(r->conn->s, iov, 2);
        if (w < 0)
            return (int)w;
        return tide_stream_drain(r->conn->s);
    }
    w = tide_stream_write(r->conn->s, b.p, b.len);
    if (w < 0)
        return (int)w;
    return write_body(r->conn->s, q, r->head, r->c->o.max_head);
}

static int is_stale_err(int rc)
{
#ifdef TIDE__HAVE_TLS
    if (rc == TIDE_TLS_ERR_TRUNCATED)
        return 1;
#endif
    return rc == -ECONNRESET || rc == -EPIPE;
}

/* Reads the response head into r (1xx interim responses skipped). */
static int read_head(tide_http_resp *r, const hc_req *q)
{
    static const tide_stream_delim delims[2] = {{"\r\n\r\n", 4}, {"\n\n", 2}};
    int first = 1;

    for (;;) {
        ssize_t n = tide_stream_readuntil_any(r->conn->s, delims, 2, r->head, r->c->o.max_head,
                                              NULL);
        ssize_t rc;
        if (n == 0)
            return first ? HC_STALE : -EPROTO;
        if (n < 0) {
            if (n == -ENOBUFS || n == -EMSGSIZE)
                return -EMSGSIZE;
            if (first && is_stale_err((int)n))
                return HC_STALE;
            return (int)n;
        }
        tide_http_response_init(&r->p, r->hdrs, r->c->o.max_headers);
        r->p.max_head = r->c->o.max_head;
        if (r->is_head)
            r->p.flags |= TIDE_HTTP_RESP_TO_HEAD;
        rc = tide_http_parse_response(r->head, (size_t)n, &r->p);
        if (rc == -EAGAIN)
            return -EPROTO; /* the connection ended inside the head */
        if (rc < 0)
            return (int)rc;
        if (rc != n)
            return -EBADMSG;
        first = 0;
        if (r->p.status >= 100 && r->p.status < 200 && r->p.status != 101)
            continue;
        break;
    }
    r->keep = r->p.keep_alive && !q->conn_close && r->p.status != 101;
    r->body_done = 0;
    switch (r->p.body) {
    case TIDE_HTTP_BODY_NONE:
        r->body_done = r->p.status != 101;
        break;
    case TIDE_HTTP_BODY_LENGTH:
        r->remaining = r->p.content_length;
        r->body_done = r->remaining == 0;
        break;
    case TIDE_HTTP_BODY_CHUNKED: {
        tide_http_chunked_opts co;
        tide_http_chunked_opts_init(&co);
        co.trailer_buf = r->trailer_buf;
        co.trailer_cap = TIDE_HTTP_TRAILERS_DEFAULT;
        tide_http_chunked_init(&r->dec, &co);
        break;
    }
    case TIDE_HTTP_BODY_UNTIL_CLOSE:
        r->keep = 0;
        break;
    }
    return 0;
}

/* One request on the origin of u: a slot, a connection, the exchange. */
static int do_one(tide_http_resp *r, const tide_http_url *u, const hc_req *q)
{
    tide_http_client *c = r->c;
    hc_host *h = host_get(c, u);
    int attempt = 0, rc;

    if (!h)
        return -ENOMEM;
    rc = tide_sem_acquire(&h->slots);
    if (rc < 0)
        return rc;
    r->host = h;
    r->is_head = !strcmp(q->method, "HEAD");
    for (;;) {
        /* Nothing of a previous exchange (a redirect's, a stale try's) stays. */
        r->err = 0;
        r->keep = 0;
        r->body_done = 0;
        r->remaining = 0;
        r->ntrailers = 0;
        r->conn = attempt ? NULL : pool_take(c, h);
        r->reused = r->conn != NULL;
        if (!r->conn) {
            rc = conn_open(c, h, &r->conn);
            if (rc < 0)
                return rc;
        } else {
            c->reuses++;
        }
        rc = send_request(r, u, q);
        if (rc < 0 && r->reused && is_stale_err(rc))
            rc = HC_STALE;
        if (rc == 0)
            rc = read_head(r, q);
        if (rc == 0)
            return 0;
        if (rc == HC_STALE && r->reused && !attempt && !q->body_fn && is_idempotent(q->method)) {
            conn_close(r->conn);
            r->conn = NULL;
            attempt = 1;
            continue;
        }
        if (rc == HC_STALE)
            rc = -ECONNRESET;
        return rc;
    }
}

static int check_headers(const tide_http_header *hs, size_t n, hc_req *q)
{
    if (n && !hs)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        const tide_http_header *h = &hs[i];
        if (!h->name || !h->name_len || (!h->value && h->value_len))
            return -EINVAL;
        for (size_t k = 0; k < h->name_len; k++)
            if (!is_tchar((unsigned char)h->name[k]))
                return -EINVAL;
        for (size_t k = 0; k < h->value_len; k++) {
            unsigned char ch = (unsigned char)h->value[k];
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                return -EINVAL; /* CR, LF, NUL...: response splitting */
        }
        if (name_is(h, "content-length") || name_is(h, "transfer-encoding"))
            return -EINVAL;
        if (name_is(h, "host"))
            q->has_host = 1;
        if (name_is(h, "connection") && tide_http_list_has(h->value, h->value_len, "close"))
            q->conn_close = 1;
    }
    return 0;
}

/* Reads and drops a redirect's body (small ones only) so that its
 * connection can be pooled. */
static void drain_small(tide_http_resp *r)
{
    char buf[2048];
    size_t total = 0;
    ssize_t n;

    if (r->p.body == TIDE_HTTP_BODY_LENGTH && r->remaining > HC_REDIRECT_DRAIN)
        return;
    while (total <= HC_REDIRECT_DRAIN && (n = tide_http_resp_read(r, buf, sizeof buf)) > 0)
        total += (size_t)n;
}

static int same_origin(const tide_http_url *a, const tide_http_url *b)
{
    return a->tls == b->tls && a->port == b->port && a->host_len == b->host_len &&
           strncasecmp(a->host, b->host, a->host_len) == 0;
}

int tide_http_client_request(tide_http_client *c, const char *url, const tide_http_req_opts *o,
                             tide_http_resp **out)
{
    tide_http_req_opts d;
    tide_http_url u, u0;
    tide_http_resp *r;
    hc_req q;
    int rc, redirects = 0;
    size_t ml;

    if (out)
        *out = NULL;
    if (!c || !url || !out)
        return -EINVAL;
    if (!o) {
        tide_http_req_opts_init(&d);
        o = &d;
    }
    memset(&q, 0, sizeof q);
    q.method = o->method ? o->method : "GET";
    ml = strlen(q.method);
    if (ml == 0 || ml > TIDE_HTTP_MAX_METHOD)
        return -EINVAL;
    for (size_t i = 0; i < ml; i++)
        if (!is_tchar((unsigned char)q.method[i]))
            return -EINVAL;
    if ((o->body && o->body_fn) || (!o->body && o->body_len) || o->max_redirects < 0)
        return -EINVAL;
    q.body = o->body;
    q.body_len = o->body_len;
    q.body_fn = o->body_fn;
    q.body_arg = o->body_arg;
    q.headers = o->headers;
    q.nheaders = o->num_headers;
    rc = check_headers(o->headers, o->num_headers, &q);
    if (rc < 0)
        return rc;
    rc = tide_http_url_parse(url, &u);
    if (rc < 0)
        return rc;
#ifndef TIDE__HAVE_TLS
    if (u.tls)
        return -EPROTONOSUPPORT;
#endif
    if (!tide_current_task())
        return -EPERM;
    u0 = u;
    r = resp_get(c);
    if (!r)
        return -ENOMEM;
    c->live++;
    r->url = url;
    for (;;) {
        const char *loc;
        size_t loclen;
        char *next;
        int st;

        rc = do_one(r, &u, &q);
        if (rc < 0)
            break;
        st = r->p.status;
        if (o->max_redirects == 0 ||
            !(st == 301 || st == 302 || st == 303 || st == 307 || st == 308))
            break;
        loc = tide_http_resp_header(r, "location", &loclen);
        if (!loc)
            break;
        if ((st == 307 || st == 308) && q.body_fn)
            break; /* a streamed body cannot be sent again */
        if (redirects == o->max_redirects) {
            rc = -ELOOP;
            break;
        }
        next = resolve_url(r->url, &u, loc, loclen, &rc);
        if (!next)
            break;
        drain_small(r);
        resp_release_conn(r);
        tide__free(r->url_copy);
        r->url_copy = next;
        r->url = next;
        if (tide_http_url_parse(next, &u) < 0) {
            rc = -EBADMSG;
            break;
        }
#ifndef TIDE__HAVE_TLS
        if (u.tls) {
            rc = -EPROTONOSUPPORT;
            break;
        }
#endif
        if (!same_origin(&u, &u0))
            q.strip_auth = 1;
        if (st <= 303 && strcmp(q.method, "HEAD") != 0) {
            q.method = "GET";
            q.body = NULL;
            q.body_len = 0;
            q.body_fn = NULL;
        }
        redirects++;
    }
    if (rc < 0) {
        r->keep = 0;
        r->err = rc;
        resp_recycle(r);
        return rc;
    }
    *out = r;
    return 0;
}
