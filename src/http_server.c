/*
 * HTTP/1.1 server (include/tide/http.h, "Server"; docs/http.md).
 *
 * A tide server (server.c) runs conn_main in a task per connection.  Each
 * connection owns one buffer of max_head bytes (and its header array),
 * allocated once with the connection: the stream's reads go straight into
 * it (the stream's limit is set to its size, so a read into the empty
 * buffer is a direct read, no copy), heads are parsed in place there, and
 * pipelined heads are parsed from what is left of it after a request
 * without another syscall.  A request's pointers (method, path, headers)
 * point into that buffer, which nothing moves until the handler returns:
 * body bytes are taken from behind the head (the position advances) or
 * read from the stream into the handler's own buffer; chunked bytes read
 * past the body's end go back to the stream (tide__stream_unread).
 *
 * Timeouts are deadline scopes begun only around reads that must wait:
 * idle (waiting for the first byte of a request), head (the whole head
 * from its first byte), body (each wait for body bytes).  A head that is
 * already buffered (pipelining) costs no timer.
 *
 * A response is one writev (head and fixed body); the stream corks the
 * writes of one step, so the 16 answers to 16 pipelined requests go out
 * in one or two syscalls.  The Date field is formatted once a second per
 * server.
 *
 * Graceful close marks the server closing, cancels the connections that
 * wait idle between requests and those taken over (a WebSocket has no
 * request to finish: its handler sees -ECANCELED and closes it, shielded
 * and bounded), and lets the others finish the request they are on (its
 * response says Connection: close).
 */
#include "tide_int.h"
#include "transport.h"
#include "ws_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#ifdef TIDE__HAVE_TLS
#include "../include/tide/tls.h"
#endif

#define DEF_MAX_HEAD (16 * 1024)
#define DEF_MAX_HEADERS 64
#define DEF_MAX_BODY ((uint64_t)1024 * 1024)
#define DEF_DRAIN_MAX (64 * 1024)
#define DEF_IDLE_MS 60000
#define DEF_HEAD_MS 10000
#define DEF_BODY_MS 30000
#define HEAD_STACK 1024 /* response heads up to this are built on the stack */

typedef struct hconn {
    struct hconn *prev, *next; /* the server's live connections */
    tide_http_server *hs;
    tide_task *task;
    tide_stream *s;
    char *buf;           /* bytes read: buf[pos, len) not consumed yet */
    size_t cap, pos, len;
    tide_http_header *hdrs;
    uint8_t idle;        /* waiting for a request with nothing buffered */
    uint8_t taken;       /* the handler took the connection over */
    unsigned nreq;
} hconn;

struct tide_http_server {
    tide_server *srv;
    tide_http_handler handler;
    void *arg;
    tide_http_server_opts o; /* defaults applied */
    hconn *conns;
    uint8_t closing;
    int64_t date_next; /* tide_now() ms at which date must be made again */
    char date[48];     /* "Date: ...\r\n" */
    size_t date_len;
    tide_http_server_stats stats;
    char *server_line; /* "Server: ...\r\n" or NULL */
    size_t server_len;
};

enum { RESP_NONE, RESP_STREAM, RESP_DONE };
enum { STREAM_CHUNKED, STREAM_LENGTH, STREAM_CLOSE };

struct tide_http_exchange {
    hconn *c;
    tide_http_request req;
    /* body */
    uint64_t body_left; /* LENGTH: bytes not read yet */
    uint64_t body_read; /* data bytes given to the handler */
    tide_http_chunked ch;
    uint8_t body_done;  /* the whole body was read */
    uint8_t continued;  /* 100 Continue sent (or not needed) */
    int body_err;       /* sticky error of the body reader */
    /* response */
    uint8_t resp;       /* RESP_* */
    uint8_t mode;       /* STREAM_* while RESP_STREAM */
    uint8_t head_only;  /* HEAD request: no body bytes */
    uint8_t close;      /* close the connection after this response */
    uint8_t taken;      /* tide_http_takeover was called */
    uint8_t broken;     /* the response could not be completed: close */
    uint64_t resp_left; /* STREAM_LENGTH: bytes still to write */
};

void tide_http_server_opts_init(tide_http_server_opts *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    tide_server_opts_init(&o->server);
    o->max_head = DEF_MAX_HEAD;
    o->max_headers = DEF_MAX_HEADERS;
    o->max_body = DEF_MAX_BODY;
    o->drain_max = DEF_DRAIN_MAX;
    o->idle_timeout_ms = DEF_IDLE_MS;
    o->head_timeout_ms = DEF_HEAD_MS;
    o->body_timeout_ms = DEF_BODY_MS;
}

/* The loop's time in ms as of this iteration (cached: no clock read).
 * Deadlines and the Date line are coarse enough for it. */
static int64_t loop_ms(void)
{
    return tide__tls_loop->now / 1000000;
}

/* ------------------------------------------------------------------ date */

static const char WDAY[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char MON[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Formats the Date line once a second (the loop's clock decides when). */
static void date_refresh(tide_http_server *hs)
{
    int64_t now = loop_ms();
    struct timespec ts;
    struct tm tm;
    int n;

    if (now < hs->date_next)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(hs->date, sizeof hs->date, "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n",
                 WDAY[tm.tm_wday], tm.tm_mday, MON[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
                 tm.tm_min, tm.tm_sec);
    hs->date_len = n > 0 && (size_t)n < sizeof hs->date ? (size_t)n : 0;
    hs->date_next = now + 1000 - ts.tv_nsec / 1000000;
}

/* -------------------------------------------------------- response heads */

static int name_is(const tide_http_header *h, const char *name, size_t len)
{
    return h->name_len == len && strncasecmp(h->name, name, len) == 0;
}

static int header_ok(const tide_http_header *h)
{
    size_t i;

    if (!h->name || !h->name_len || (!h->value && h->value_len))
        return 0;
    for (i = 0; i < h->name_len; i++) {
        unsigned char ch = (unsigned char)h->name[i];
        if (ch <= ' ' || ch == ':' || ch >= 0x7f)
            return 0;
    }
    for (i = 0; i < h->value_len; i++) {
        unsigned char ch = (unsigned char)h->value[i];
        if (ch == '\r' || ch == '\n' || ch == 0)
            return 0;
    }
    return 1;
}

static char *put(char *p, const void *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

static char *put_u64(char *p, uint64_t v)
{
    char tmp[24];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* What the head says about the body. */
#define FRAME_LENGTH 0  /* Content-Length: len */
#define FRAME_CHUNKED 1 /* Transfer-Encoding: chunked */
#define FRAME_NONE 2    /* neither (204, 304, until close) */

/* Writes the response head for status, the caller's headers and framing
 * (plus body, body_len in the same writev).  Sets x->close from the
 * request, the server and a caller's Connection field. */
static int send_head(tide_http_exchange *x, int status, const tide_http_header *hdrs, size_t n,
                     int frame, uint64_t len, const void *body, size_t body_len)
{
    hconn *c = x->c;
    tide_http_server *hs = c->hs;
    const char *reason = tide_http_reason(status);
    size_t rlen = strlen(reason), need, i;
    int user_date = 0, user_server = 0;
    char stackbuf[HEAD_STACK], *head, *p;
    struct iovec iov[2];
    ssize_t w;

    if (status < 200 || status > 999)
        return -EINVAL;
    if (n && !hdrs)
        return -EINVAL;
    if (!x->req.keep_alive || hs->closing ||
        (hs->o.max_requests && c->nreq >= hs->o.max_requests))
        x->close = 1;
    /* A body left unread that is too long to drain (or that the client may
     * not send without 100 Continue) ends the connection. */
    if (!x->body_done && x->req.body != TIDE_HTTP_BODY_NONE &&
        ((x->req.expect_continue && !x->continued) ||
         (x->req.body == TIDE_HTTP_BODY_LENGTH && x->body_left > hs->o.drain_max) || x->body_err))
        x->close = 1;
    need = 9 + 4 + rlen + 2 + hs->date_len + hs->server_len + 64 + 2;
    for (i = 0; i < n; i++) {
        if (!header_ok(&hdrs[i]))
            return -EINVAL;
        need += hdrs[i].name_len + hdrs[i].value_len + 4;
        if (name_is(&hdrs[i], "Connection", 10) &&
            tide_http_list_has(hdrs[i].value, hdrs[i].value_len, "close"))
            x->close = 1;
    }
    head = need <= sizeof stackbuf ? stackbuf : tide__malloc(need);
    if (!head)
        return -ENOMEM;
    p = put(head, "HTTP/1.1 ", 9);
    *p++ = (char)('0' + status / 100);
    *p++ = (char)('0' + status / 10 % 10);
    *p++ = (char)('0' + status % 10);
    *p++ = ' ';
    p = put(p, reason, rlen);
    p = put(p, "\r\n", 2);
    for (i = 0; i < n; i++) {
        const tide_http_header *h = &hdrs[i];
        if (name_is(h, "Content-Length", 14) || name_is(h, "Transfer-Encoding", 17) ||
            name_is(h, "Connection", 10))
            continue; /* ours */
        if (name_is(h, "Date", 4))
            user_date = 1;
        if (name_is(h, "Server", 6))
            user_server = 1;
        p = put(p, h->name, h->name_len);
        p = put(p, ": ", 2);
        p = put(p, h->value, h->value_len);
        p = put(p, "\r\n", 2);
    }
    if (!user_date) {
        date_refresh(hs);
        p = put(p, hs->date, hs->date_len);
    }
    if (!user_server && hs->server_line)
        p = put(p, hs->server_line, hs->server_len);
    if (frame == FRAME_LENGTH && status != 204 && status != 304) {
        p = put(p, "Content-Length: ", 16);
        p = put_u64(p, len);
        p = put(p, "\r\n", 2);
    } else if (frame == FRAME_CHUNKED) {
        p = put(p, "Transfer-Encoding: chunked\r\n", 28);
    }
    if (x->close)
        p = put(p, "Connection: close\r\n", 19);
    else if (x->req.version_minor == 0)
        p = put(p, "Connection: keep-alive\r\n", 24);
    p = put(p, "\r\n", 2);
    iov[0].iov_base = head;
    iov[0].iov_len = (size_t)(p - head);
    iov[1].iov_base = (void *)(uintptr_t)body;
    iov[1].iov_len = body_len;
    w = tide_stream_writev(c->s, iov, body_len ? 2 : 1);
    if (head != stackbuf)
        tide__free(head);
    if (w < 0) {
        x->broken = 1;
        return (int)w;
    }
    return 0;
}

/* A response the server makes itself (errors); the connection closes. */
static void send_error(tide_http_exchange *x, int status)
{
    char body[64];
    static const tide_http_header ct = {"Content-Type", 12, "text/plain", 10};
    int n = snprintf(body, sizeof body, "%d %s\n", status, tide_http_reason(status));

    x->close = 1;
    x->req.keep_alive = 0;
    x->c->hs->stats.errors++;
    if (x->resp != RESP_NONE)
        return;
    x->resp = RESP_DONE;
    (void)send_head(x, status, &ct, 1, FRAME_LENGTH, (uint64_t)n, x->head_only ? NULL : body,
                    x->head_only ? 0 : (size_t)n);
}

/* ------------------------------------------------------------- responses */

static int check_x(const tide_http_exchange *x)
{
    if (!x)
        return -EINVAL;
    if (x->taken)
        return -EBADF;
    return 0;
}

int tide_http_respond(tide_http_exchange *x, int status, const tide_http_header *headers,
                      size_t n, const void *body, size_t len)
{
    int rc = check_x(x);

    if (rc < 0)
        return rc;
    if (!body && len)
        return -EINVAL;
    if (x->resp != RESP_NONE)
        return -EALREADY;
    if (status == 204 || status == 304)
        len = 0;
    rc = send_head(x, status, headers, n, FRAME_LENGTH, len, x->head_only ? NULL : body,
                   x->head_only ? 0 : len);
    if (rc < 0)
        return rc;
    x->resp = RESP_DONE;
    return tide_stream_drain(x->c->s);
}

int tide_http_begin(tide_http_exchange *x, int status, const tide_http_header *headers, size_t n)
{
    int rc = check_x(x), frame;
    uint64_t cl = 0;
    size_t i;

    if (rc < 0)
        return rc;
    if (x->resp != RESP_NONE)
        return -EALREADY;
    if (n && !headers)
        return -EINVAL;
    x->mode = x->req.version_minor >= 1 ? STREAM_CHUNKED : STREAM_CLOSE;
    for (i = 0; i < n; i++)
        if (name_is(&headers[i], "Content-Length", 14)) {
            const char *v = headers[i].value;
            size_t k;
            if (!v || !headers[i].value_len || headers[i].value_len > 18)
                return -EINVAL;
            for (k = 0, cl = 0; k < headers[i].value_len; k++) {
                if (v[k] < '0' || v[k] > '9')
                    return -EINVAL;
                cl = cl * 10 + (uint64_t)(v[k] - '0');
            }
            x->mode = STREAM_LENGTH;
        }
    if (status == 204 || status == 304) {
        x->mode = STREAM_LENGTH;
        cl = 0;
    }
    if (x->mode == STREAM_CLOSE)
        x->close = 1;
    frame = x->mode == STREAM_CHUNKED ? FRAME_CHUNKED
            : x->mode == STREAM_LENGTH ? FRAME_LENGTH : FRAME_NONE;
    rc = send_head(x, status, headers, n, frame, cl, NULL, 0);
    if (rc < 0)
        return rc;
    x->resp = RESP_STREAM;
    x->resp_left = cl;
    return 0;
}

ssize_t tide_http_write(tide_http_exchange *x, const void *buf, size_t n)
{
    int rc = check_x(x);
    struct iovec iov[3];
    char line[24];
    ssize_t w;

    if (rc < 0)
        return rc;
    if (!buf && n)
        return -EINVAL;
    if (x->resp != RESP_STREAM)
        return -EPROTO;
    if (x->mode == STREAM_LENGTH) {
        if (n > x->resp_left)
            return -EMSGSIZE;
        x->resp_left -= n;
    }
    if (!n || x->head_only)
        return (ssize_t)n;
    if (x->mode == STREAM_CHUNKED) {
        int k = snprintf(line, sizeof line, "%zx\r\n", n);
        iov[0].iov_base = line;
        iov[0].iov_len = (size_t)k;
        iov[1].iov_base = (void *)(uintptr_t)buf;
        iov[1].iov_len = n;
        iov[2].iov_base = (void *)(uintptr_t)"\r\n";
        iov[2].iov_len = 2;
        w = tide_stream_writev(x->c->s, iov, 3);
    } else {
        w = tide_stream_write(x->c->s, buf, n);
    }
    if (w < 0) {
        x->broken = 1;
        return w;
    }
    rc = tide_stream_drain(x->c->s);
    if (rc < 0) {
        x->broken = 1;
        return rc;
    }
    return (ssize_t)n;
}

int tide_http_end(tide_http_exchange *x)
{
    int rc = check_x(x);

    if (rc < 0)
        return rc;
    if (x->resp != RESP_STREAM)
        return -EPROTO;
    x->resp = RESP_DONE;
    if (x->mode == STREAM_LENGTH && x->resp_left) {
        x->broken = 1;
        return -EPROTO;
    }
    if (x->mode == STREAM_CHUNKED && !x->head_only) {
        ssize_t w = tide_stream_write(x->c->s, "0\r\n\r\n", 5);
        if (w < 0) {
            x->broken = 1;
            return (int)w;
        }
    }
    return tide_stream_drain(x->c->s);
}

int tide_http_send_file(tide_http_exchange *x, int status, const tide_http_header *headers,
                        size_t n, int fd, off_t offset, size_t len)
{
    int rc = check_x(x);
    tide_stream *s;
    off_t off = offset;
    size_t done = 0;

    if (rc < 0)
        return rc;
    if (fd < 0)
        return -EBADF;
    if (offset < 0)
        return -EINVAL;
    if (x->resp != RESP_NONE)
        return -EALREADY;
    rc = send_head(x, status, headers, n, FRAME_LENGTH, len, NULL, 0);
    if (rc < 0)
        return rc;
    x->resp = RESP_DONE;
    if (x->head_only || !len)
        return tide_stream_drain(x->c->s);
    s = x->c->s;
#ifdef TIDE__HAVE_TLS
    if (tide_stream_is_tls(s)) {
        while (done < len) {
            ssize_t w = tide_tls_sendfile(s, fd, &off, len - done);
            if (w <= 0) {
                x->broken = 1;
                return w < 0 ? (int)w : -EIO;
            }
            done += (size_t)w;
        }
        return 0;
    }
#endif
    rc = tide_stream_flush(s);
    if (rc < 0) {
        x->broken = 1;
        return rc;
    }
    while (done < len) {
        ssize_t w = tide_sendfile(tide_stream_fd(s), fd, &off, len - done);
        if (w <= 0) {
            x->broken = 1;
            return w < 0 ? (int)w : -EIO;
        }
        done += (size_t)w;
    }
    return 0;
}

/* ------------------------------------------------------------------ body */

/* Reads into buf[0..n) from the connection: buffered bytes first, then the
 * stream, each wait bounded by the body timeout. */
static ssize_t body_raw(tide_http_exchange *x, char *buf, size_t n, int *from_buf)
{
    hconn *c = x->c;
    size_t avail = c->len - c->pos;
    tide_scope sc;
    ssize_t r;
    int trc;

    *from_buf = avail > 0;
    if (avail) {
        if (n > avail)
            n = avail;
        memcpy(buf, c->buf + c->pos, n);
        c->pos += n;
        return (ssize_t)n;
    }
    tide_deadline_begin(&sc, loop_ms() + c->hs->o.body_timeout_ms);
    r = tide_stream_read(c->s, buf, n);
    trc = tide_timeout_end(&sc);
    if (r < 0 && trc < 0)
        r = -ETIMEDOUT;
    return r;
}

static ssize_t body_fail(tide_http_exchange *x, int err)
{
    x->body_err = err;
    x->close = 1;
    if (err == -EMSGSIZE)
        send_error(x, 413);
    else if (err == -EBADMSG)
        send_error(x, 400);
    else if (err == -ETIMEDOUT)
        send_error(x, 408);
    return err;
}

ssize_t tide_http_read_body(tide_http_exchange *x, void *buf, size_t n)
{
    tide_http_server *hs;
    ssize_t r;
    int rc = check_x(x), from_buf;

    if (rc < 0)
        return rc;
    if (!buf && n)
        return -EINVAL;
    if (x->body_err)
        return x->body_err;
    if (x->body_done || x->req.body == TIDE_HTTP_BODY_NONE || !n)
        return 0;
    hs = x->c->hs;
    if (!x->continued) {
        x->continued = 1;
        if (x->req.expect_continue && x->resp == RESP_NONE) {
            ssize_t w = tide_stream_write(x->c->s, "HTTP/1.1 100 Continue\r\n\r\n", 25);
            if (w < 0)
                return body_fail(x, (int)w);
        }
    }
    if (x->req.body == TIDE_HTTP_BODY_LENGTH) {
        if (n > x->body_left)
            n = (size_t)x->body_left;
        r = body_raw(x, buf, n, &from_buf);
        if (r == 0)
            return body_fail(x, -ECONNRESET);
        if (r < 0)
            return body_fail(x, (int)r);
        x->body_left -= (uint64_t)r;
        x->body_read += (uint64_t)r;
        if (!x->body_left)
            x->body_done = 1;
        return r;
    }
    /* Chunked: decode in place in buf; bytes past the body's end go back. */
    for (;;) {
        size_t consumed = 0, produced = 0;
        int d;

        r = body_raw(x, buf, n, &from_buf);
        if (r == 0)
            return body_fail(x, -ECONNRESET);
        if (r < 0)
            return body_fail(x, (int)r);
        d = tide_http_chunked_decode(&x->ch, buf, (size_t)r, &consumed, buf, n, &produced);
        if (d < 0)
            return body_fail(x, -EBADMSG);
        if (consumed < (size_t)r) {
            /* The body ended inside what was read: the rest is the next
             * request's.  Give it back where it came from: the connection's
             * buffer still holds it (step back), else the stream. */
            size_t extra = (size_t)r - consumed;
            if (from_buf)
                x->c->pos -= extra;
            else if (tide__stream_unread(x->c->s, (char *)buf + consumed, extra) < 0)
                return body_fail(x, -ENOMEM);
        }
        if (x->body_read + produced > hs->o.max_body)
            return body_fail(x, -EMSGSIZE);
        x->body_read += produced;
        if (d == 1)
            x->body_done = 1;
        if (produced || d == 1)
            return (ssize_t)produced;
    }
}

ssize_t tide_http_read_body_all(tide_http_exchange *x, char **out)
{
    size_t cap = 0, len = 0;
    char *b = NULL;
    int rc = check_x(x);

    if (rc < 0)
        return rc;
    if (!out)
        return -EINVAL;
    *out = NULL;
    for (;;) {
        ssize_t r;
        if (cap - len < 4096 + 1) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *nb;
            if (x->req.body == TIDE_HTTP_BODY_LENGTH && x->body_left + len + 1 < ncap)
                ncap = (size_t)x->body_left + len + 1;
            if (ncap < len + 4096 + 1)
                ncap = len + 4096 + 1;
            nb = realloc(b, ncap);
            if (!nb) {
                free(b);
                return -ENOMEM;
            }
            b = nb;
            cap = ncap;
        }
        r = tide_http_read_body(x, b + len, cap - len - 1);
        if (r < 0) {
            free(b);
            return r;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    b[len] = 0;
    *out = b;
    return (ssize_t)len;
}

/* --------------------------------------------------------------- access */

const tide_http_request *tide_http_exchange_request(const tide_http_exchange *x)
{
    return x ? &x->req : NULL;
}

const char *tide_http_get_header(const tide_http_exchange *x, const char *name, size_t *len)
{
    if (!x || !name)
        return NULL;
    return tide_http_header_get(x->req.headers, x->req.num_headers, name, len);
}

int tide__http_responded(const tide_http_exchange *x)
{
    return x->resp != RESP_NONE;
}

tide_stream *tide_http_exchange_stream(const tide_http_exchange *x)
{
    return x && !x->taken ? x->c->s : NULL;
}

static void conn_unlink(hconn *c)
{
    tide_http_server *hs = c->hs;

    if (c->prev)
        c->prev->next = c->next;
    else if (hs->conns == c)
        hs->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

tide_stream *tide_http_takeover(tide_http_exchange *x)
{
    hconn *c;

    if (!x || x->taken || x->resp != RESP_NONE)
        return NULL;
    c = x->c;
    if (c->len > c->pos && tide__stream_unread(c->s, c->buf + c->pos, c->len - c->pos) < 0)
        return NULL;
    c->pos = c->len;
    x->taken = 1;
    c->taken = 1;
    tide__server_forget(c->hs->srv, c->s);
    /* Graceful close cancels taken-over connections (their protocol has no
     * request to finish); one taken over after it began is cancelled now. */
    if (c->hs->closing)
        tide_cancel(c->task);
    return c->s; /* c stays listed (for -EDEADLK) until the handler returns */
}

/* ------------------------------------------------------------ connection */

/* Reads until a whole head is buffered at c->buf + c->pos: its length, 0
 * when the connection should just close (EOF or idle timeout between
 * requests, server closing), < 0 after an error answered. */
static ssize_t read_head(hconn *c, tide_http_exchange *x)
{
    tide_http_server *hs = c->hs;
    int64_t head_deadline = 0;

    if (c->pos == c->len)
        c->pos = c->len = 0;
    for (;;) {
        size_t avail = c->len - c->pos;
        tide_scope sc;
        ssize_t r;
        int trc;

        if (avail) {
            tide_http_request_init(&x->req, c->hdrs, hs->o.max_headers);
            x->req.max_head = hs->o.max_head;
            r = tide_http_parse_request(c->buf + c->pos, avail, &x->req);
            if (r > 0)
                return r;
            if (r != -EAGAIN) {
                send_error(x, x->req.error_status ? x->req.error_status : 400);
                return -1;
            }
            if (!head_deadline)
                head_deadline = loop_ms() + hs->o.head_timeout_ms;
        }
        if (c->pos) {
            memmove(c->buf, c->buf + c->pos, avail);
            c->pos = 0;
            c->len = avail;
        }
        if (c->len == c->cap) {
            send_error(x, 431);
            return -1;
        }
        if (!avail) {
            if (hs->closing)
                return 0;
            c->idle = 1;
            tide_deadline_begin(&sc, loop_ms() + hs->o.idle_timeout_ms);
        } else {
            tide_deadline_begin(&sc, head_deadline);
        }
        r = tide_stream_read(c->s, c->buf + c->len, c->cap - c->len);
        trc = tide_timeout_end(&sc);
        c->idle = 0;
        if (r == 0)
            return avail ? (send_error(x, 400), -1) : 0;
        if (r < 0) {
            if (avail && trc < 0)
                send_error(x, 408);
            return avail ? -1 : 0;
        }
        c->len += (size_t)r;
    }
}

/* After the handler: reads and drops what it left of the body, up to
 * drain_max bytes.  0 if the connection may go on. */
static int drain_body(tide_http_exchange *x)
{
    char scratch[2048];
    uint64_t budget = x->c->hs->o.drain_max;

    if (x->body_done || x->req.body == TIDE_HTTP_BODY_NONE)
        return 0;
    if (x->body_err || (x->req.expect_continue && !x->continued))
        return -1;
    if (x->req.body == TIDE_HTTP_BODY_LENGTH && x->body_left > budget)
        return -1;
    x->continued = 1; /* no 100 Continue after a final response */
    while (!x->body_done) {
        uint64_t before = x->body_read;
        ssize_t r = tide_http_read_body(x, scratch, sizeof scratch);
        if (r < 0)
            return -1;
        if (x->body_read - before > budget)
            return -1;
        budget -= x->body_read - before;
        if (r == 0 && !x->body_done)
            return -1;
    }
    return 0;
}

/* Closing after a response while the client may still be sending (an
 * error, a body left unread): closing with unread bytes would make the
 * kernel send a reset that can destroy the response before the client
 * reads it.  So shut the write side once the response is out, and read and
 * drop what comes, for a bounded time and amount, before the close. */
static void linger(hconn *c)
{
    char scratch[4096];
    size_t total = 0;
    tide_scope sc;

    if (tide_stream_write_eof(c->s) < 0)
        return;
    tide_timeout_begin(&sc, 1000);
    while (total < 256 * 1024) {
        ssize_t r = tide_stream_read(c->s, scratch, sizeof scratch);
        if (r <= 0)
            break;
        total += (size_t)r;
    }
    tide_timeout_end(&sc);
}

static int conn_main(tide_stream *s, void *arg)
{
    tide_http_server *hs = arg;
    hconn c;
    tide_http_exchange x;

    memset(&c, 0, sizeof c);
    c.hs = hs;
    c.s = s;
    c.task = tide_current_task();
    c.cap = hs->o.max_head;
    c.buf = tide__malloc(c.cap + hs->o.max_headers * sizeof(tide_http_header));
    if (!c.buf)
        return -ENOMEM;
    c.hdrs = (tide_http_header *)(void *)(c.buf + c.cap);
    hs->stats.connections++;
    c.next = hs->conns;
    if (hs->conns)
        hs->conns->prev = &c;
    hs->conns = &c;

    for (;;) {
        ssize_t head;
        int rc;

        memset(&x, 0, sizeof x);
        x.c = &c;
        head = read_head(&c, &x);
        if (head <= 0)
            break;
        c.pos += (size_t)head;
        c.nreq++;
        hs->stats.requests++;
        x.head_only = x.req.method_id == TIDE_HTTP_HEAD;
        if (x.req.body == TIDE_HTTP_BODY_LENGTH) {
            x.body_left = x.req.content_length;
            x.body_done = x.body_left == 0;
            if (x.req.content_length > hs->o.max_body) {
                x.body_err = -EMSGSIZE;
                send_error(&x, 413);
                break;
            }
        } else if (x.req.body == TIDE_HTTP_BODY_CHUNKED) {
            tide_http_chunked_init(&x.ch, NULL);
        }
        rc = hs->handler(&x, hs->arg);
        if (x.taken)
            break;
        if (x.resp == RESP_NONE)
            send_error(&x, 500);
        else if (x.resp == RESP_STREAM) {
            if (rc < 0 || tide_http_end(&x) < 0)
                x.broken = 1;
        }
        if (x.broken || x.close || drain_body(&x) < 0)
            break;
        if (tide_stream_drain(s) < 0)
            break;
    }
    conn_unlink(&c);
    if (!x.taken && x.close && !x.broken)
        linger(&c);
    tide__free(c.buf);
    return 0;
}

/* ------------------------------------------------------------- lifecycle */

int tide_http_serve(const char *host, int port, tide_http_handler handler, void *arg,
                    const tide_http_server_opts *o, tide_http_server **out)
{
    tide_http_server *hs;
    tide_server_opts so;
    int rc;

    if (!out || !handler)
        return -EINVAL;
    *out = NULL;
    if (o && (o->idle_timeout_ms < 0 || o->head_timeout_ms < 0 || o->body_timeout_ms < 0 ||
              (o->max_head && o->max_head < 64) || o->max_head > ((size_t)64 << 20) ||
              o->max_headers > 100000))
        return -EINVAL;
    if (!tide__tls_loop)
        return -EPERM;
#ifndef TIDE__HAVE_TLS
    if (o && o->tls)
        return -ENOTSUP;
#endif
    hs = tide__calloc(1, sizeof *hs);
    if (!hs)
        return -ENOMEM;
    if (o)
        hs->o = *o;
    else
        tide_http_server_opts_init(&hs->o);
    if (!hs->o.max_head)
        hs->o.max_head = DEF_MAX_HEAD;
    if (!hs->o.max_headers)
        hs->o.max_headers = DEF_MAX_HEADERS;
    if (!hs->o.max_body)
        hs->o.max_body = DEF_MAX_BODY;
    if (!hs->o.drain_max)
        hs->o.drain_max = DEF_DRAIN_MAX;
    if (!hs->o.idle_timeout_ms)
        hs->o.idle_timeout_ms = DEF_IDLE_MS;
    if (!hs->o.head_timeout_ms)
        hs->o.head_timeout_ms = DEF_HEAD_MS;
    if (!hs->o.body_timeout_ms)
        hs->o.body_timeout_ms = DEF_BODY_MS;
    if (hs->o.server_name) {
        size_t n = strlen(hs->o.server_name), i;
        for (i = 0; i < n; i++)
            if (hs->o.server_name[i] == '\r' || hs->o.server_name[i] == '\n') {
                tide__free(hs);
                return -EINVAL;
            }
        hs->server_line = tide__malloc(n + 11);
        if (!hs->server_line) {
            tide__free(hs);
            return -ENOMEM;
        }
        memcpy(hs->server_line, "Server: ", 8);
        memcpy(hs->server_line + 8, hs->o.server_name, n);
        memcpy(hs->server_line + 8 + n, "\r\n", 3);
        hs->server_len = n + 10;
        hs->o.server_name = NULL; /* not the caller's memory past here */
    }
    hs->handler = handler;
    hs->arg = arg;
    so = hs->o.server;
    if (!so.stream.limit) {
        tide_stream_opts_init(&so.stream);
        so.stream.limit = hs->o.max_head; /* reads into an empty head buffer go direct */
    }
#ifdef TIDE__HAVE_TLS
    if (hs->o.tls) {
        tide_tls_opts to;
        tide_tls_opts_init(&to);
        to.ctx = hs->o.tls;
        rc = tide_start_tls_server(host, port, conn_main, hs, &so, &to, &hs->srv);
    } else
#endif
        rc = tide_start_server(host, port, conn_main, hs, &so, &hs->srv);
    if (rc < 0) {
        tide__free(hs->server_line);
        tide__free(hs);
        return rc;
    }
    *out = hs;
    return 0;
}

int tide_http_server_port(const tide_http_server *hs)
{
    return hs ? tide_server_port(hs->srv) : -EINVAL;
}

size_t tide_http_server_connections(const tide_http_server *hs)
{
    return hs ? tide_server_connections(hs->srv) : 0;
}

void tide_http_server_get_stats(const tide_http_server *hs, tide_http_server_stats *st)
{
    if (!st)
        return;
    if (hs)
        *st = hs->stats;
    else
        memset(st, 0, sizeof *st);
}

int tide_http_server_close(tide_http_server *hs, int how)
{
    tide_task *cur = tide_current_task();
    int rc;

    if (!hs || (how != TIDE_SERVER_WAIT && how != TIDE_SERVER_CANCEL))
        return -EINVAL;
    if (!cur)
        return -EPERM;
    if (hs->closing)
        return -EALREADY;
    for (hconn *c = hs->conns; c; c = c->next)
        if (c->task == cur)
            return -EDEADLK;
    hs->closing = 1;
    for (hconn *c = hs->conns; c; c = c->next)
        if (c->idle || c->taken)
            tide_cancel(c->task);
    rc = tide_server_close(hs->srv, how);
    tide__free(hs->server_line);
    tide__free(hs);
    return rc;
}
