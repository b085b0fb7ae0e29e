/*
 * The HTTP client (src/http_client.c) against a server written here with
 * plain tide streams: Content-Length, chunked with trailers, until-close,
 * HEAD/204/1xx, keep-alive reuse (accepts counted), the stale-connection
 * retry, redirects (bounded, relative, 303 -> GET, 307 keeps the body),
 * streamed uploads, timeouts (the connection is not pooled), malformed
 * responses, size limits, the per-host limit, the URL parser and bad
 * arguments.  Every test checks that no fd is left open.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tide.h"
#include "http_client_int.h"
#include "tide_int.h"
#include "util.h"
#include "http_util.h"

static int g_accepts;
static int g_port;

static int wr(tide_stream *s, const char *str)
{
    return tide_stream_write(s, str, strlen(str)) < 0 ? -1 : 0;
}

/* Reads a request body (Content-Length or chunked) into buf; its length or
 * -1. */
static ssize_t read_body(tide_stream *s, const tide_http_request *req, char *buf, size_t cap)
{
    if (req->body == TIDE_HTTP_BODY_LENGTH) {
        if (req->content_length > cap)
            return -1;
        return tide_stream_readexactly(s, buf, (size_t)req->content_length) ==
                       (ssize_t)req->content_length
                   ? (ssize_t)req->content_length
                   : -1;
    }
    if (req->body == TIDE_HTTP_BODY_CHUNKED) {
        tide_http_chunked d;
        size_t len = 0;
        tide_http_chunked_init(&d, NULL);
        for (;;) {
            char c;
            size_t used, made;
            int rc;
            if (tide_stream_read(s, &c, 1) != 1)
                return -1;
            rc = tide_http_chunked_decode(&d, &c, 1, &used, buf + len, cap - len, &made);
            if (rc < 0 || len + made > cap)
                return -1;
            len += made;
            if (rc == 1)
                return (ssize_t)len;
        }
    }
    return 0;
}

static int handler(tide_stream *s, void *arg)
{
    static char body[256 * 1024];
    char head[8192], out[1024];
    (void)arg;
    g_accepts++;
    for (;;) {
        tide_http_header hs[32];
        tide_http_request req;
        char path[256];
        ssize_t n = tide_stream_readuntil(s, "\r\n\r\n", 4, head, sizeof head);
        ssize_t blen;
        const char *xm;
        size_t xml = 0;
        if (n <= 0)
            return 0;
        tide_http_request_init(&req, hs, 32);
        if (tide_http_parse_request(head, (size_t)n, &req) != n)
            return 0;
        blen = read_body(s, &req, body, sizeof body);
        if (blen < 0)
            return 0;
        snprintf(path, sizeof path, "%.*s", (int)req.path_len, req.path);
        xm = tide_http_header_get(hs, req.num_headers, "x-tag", &xml);

        if (!strcmp(path, "/len")) {
            wr(s, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Test: yes\r\n\r\nhello");
        } else if (!strcmp(path, "/chunked")) {
            wr(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n");
        } else if (!strcmp(path, "/close")) {
            wr(s, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end");
            return 0;
        } else if (!strcmp(path, "/once")) {
            wr(s, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nonce");
            (void)tide_stream_flush(s);
            return 0; /* the connection ends: a pooled copy is stale */
        } else if (!strcmp(path, "/echo")) {
            snprintf(out, sizeof out,
                     "HTTP/1.1 200 OK\r\nX-Method: %.*s\r\nX-Tag: %.*s\r\n"
                     "X-Auth: %s\r\nContent-Length: %zd\r\n\r\n",
                     (int)req.method_len, req.method, (int)xml, xm ? xm : "",
                     tide_http_header_get(hs, req.num_headers, "authorization", NULL) ? "yes"
                                                                                      : "no",
                     blen);
            wr(s, out);
            if (blen > 0 && tide_stream_write(s, body, (size_t)blen) < 0)
                return 0;
        } else if (!strncmp(path, "/redir/", 7)) {
            int k = atoi(path + 7);
            if (k > 0)
                snprintf(out, sizeof out,
                         "HTTP/1.1 302 Found\r\nLocation: /redir/%d\r\nContent-Length: 3\r\n\r\nabc",
                         k - 1);
            else
                snprintf(out, sizeof out, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone");
            wr(s, out);
        } else if (!strcmp(path, "/a/b/rel")) {
            wr(s, "HTTP/1.1 301 Moved\r\nLocation: ../c/./target?x=1#frag\r\nContent-Length: 0\r\n\r\n");
        } else if (!strcmp(path, "/a/c/target")) {
            snprintf(out, sizeof out, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%.*s",
                     req.query_len, (int)req.query_len, req.query ? req.query : "");
            wr(s, out);
        } else if (!strcmp(path, "/redir-badbody")) {
            wr(s, "HTTP/1.1 302 Found\r\nLocation: /len\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "zz\r\n");
        } else if (!strcmp(path, "/extra")) {
            wr(s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n");
        } else if (!strcmp(path, "/manyheaders")) {
            wr(s, "HTTP/1.1 200 OK\r\n");
            for (int i = 0; i < 100; i++)
                wr(s, "X-Many: 1\r\n");
            wr(s, "Content-Length: 0\r\n\r\n");
        } else if (!strcmp(path, "/see-other")) {
            wr(s, "HTTP/1.1 303 See Other\r\nLocation: /echo\r\nContent-Length: 0\r\n\r\n");
        } else if (!strcmp(path, "/temp")) {
            wr(s, "HTTP/1.1 307 Temporary\r\nLocation: /echo\r\nContent-Length: 0\r\n\r\n");
        } else if (!strcmp(path, "/elsewhere")) {
            snprintf(out, sizeof out,
                     "HTTP/1.1 302 Found\r\nLocation: http://localhost:%d/echo\r\n"
                     "Content-Length: 0\r\n\r\n",
                     g_port);
            wr(s, out);
        } else if (!strcmp(path, "/slow")) {
            if (tide_sleep(2000) < 0)
                return 0;
            wr(s, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        } else if (!strcmp(path, "/slowbody")) {
            wr(s, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcde");
            if (tide_sleep(2000) < 0)
                return 0;
            wr(s, "fghij");
        } else if (!strcmp(path, "/bad")) {
            wr(s, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello");
        } else if (!strcmp(path, "/badchunk")) {
            wr(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n");
        } else if (!strcmp(path, "/trunc")) {
            wr(s, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789");
            (void)tide_stream_flush(s);
            return 0;
        } else if (!strcmp(path, "/trunchead")) {
            wr(s, "HTTP/1.1 200 OK\r\nContent-Le");
            (void)tide_stream_flush(s);
            return 0;
        } else if (!strcmp(path, "/big")) {
            memset(body, 'b', 100000);
            wr(s, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
            if (tide_stream_write(s, body, 100000) < 0 || tide_stream_drain(s) < 0)
                return 0;
        } else if (!strcmp(path, "/bigchunked")) {
            memset(body, 'c', 4000);
            wr(s, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
            for (int i = 0; i < 10; i++) {
                wr(s, "fa0\r\n");
                tide_stream_write(s, body, 4000);
                wr(s, "\r\n");
            }
            wr(s, "0\r\n\r\n");
        } else if (!strcmp(path, "/bighead")) {
            wr(s, "HTTP/1.1 200 OK\r\nX-Big: ");
            memset(body, 'h', 20000);
            tide_stream_write(s, body, 20000);
            wr(s, "\r\nContent-Length: 0\r\n\r\n");
        } else if (!strcmp(path, "/continue")) {
            wr(s, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        } else if (!strcmp(path, "/head")) {
            wr(s, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
        } else if (!strcmp(path, "/204")) {
            wr(s, "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
        } else if (!strcmp(path, "/lf")) {
            wr(s, "HTTP/1.1 200 OK\nContent-Length: 2\n\nok");
        } else if (!strcmp(path, "/garbage")) {
            wr(s, "SSH-2.0-OpenSSH\r\n\r\n");
        } else if (!strcmp(path, "/http10")) {
            wr(s, "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
        } else {
            wr(s, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        }
        if (tide_stream_drain(s) < 0)
            return 0;
    }
}

typedef int (*client_fn)(tide_http_client *c, const char *base);

typedef struct run_ctx {
    client_fn fn;
    const tide_http_client_opts *o;
    int result;
} run_ctx;

static int run_main(void *arg)
{
    run_ctx *x = arg;
    tide_server *srv;
    tide_http_client *c;
    char base[64];
    int rc;

    g_accepts = 0;
    rc = tide_start_server("127.0.0.1", 0, handler, NULL, NULL, &srv);
    if (rc < 0)
        return rc;
    g_port = tide_server_port(srv);
    snprintf(base, sizeof base, "http://127.0.0.1:%d", g_port);
    rc = tide_http_client_new(&c, x->o);
    if (rc == 0) {
        x->result = x->fn(c, base);
        rc = tide_http_client_free(c);
    }
    tide_server_close(srv, TIDE_SERVER_CANCEL);
    return rc;
}

static void run(client_fn fn, const tide_http_client_opts *o)
{
    run_ctx x = {fn, o, -1};
    int fds = tt_count_fds();
    assert_int_equal(tide_run(run_main, &x), 0);
    assert_int_equal(x.result, 0);
    assert_int_equal(tt_count_fds(), fds);
}

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            print_error("%s:%d: %s\n", __FILE__, __LINE__, #cond);                                 \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

static const char *U(const char *base, const char *path)
{
    static char bufs[8][256];
    static unsigned i;
    char *b = bufs[i++ % 8];
    snprintf(b, 256, "%s%s", base, path);
    return b;
}

/* ---------------------------------------------------------------- bodies */

static int c_length(tide_http_client *c, const char *base)
{
    tide_http_resp *r;
    char buf[3], *all;
    size_t len;
    const char *v;
    CHECK(tide_http_client_request(c, U(base, "/len"), NULL, &r) == 0);
    CHECK(tide_http_resp_status(r) == 200);
    CHECK(tide_http_resp_version(r) == 1);
    v = tide_http_resp_reason(r, &len);
    CHECK(len == 2 && !memcmp(v, "OK", 2));
    v = tide_http_resp_header(r, "x-TEST", &len);
    CHECK(v && len == 3 && !memcmp(v, "yes", 3));
    CHECK(tide_http_resp_header(r, "x-missing", NULL) == NULL);
    CHECK(tide_http_resp_content_length(r) == 5);
    CHECK(tide_http_resp_reused(r) == 0);
    /* Small reads: 3 + 2, then the end. */
    CHECK(tide_http_resp_read(r, buf, 3) == 3 && !memcmp(buf, "hel", 3));
    CHECK(tide_http_resp_read(r, buf, 3) == 2 && !memcmp(buf, "lo", 2));
    CHECK(tide_http_resp_read(r, buf, 3) == 0);
    CHECK(tide_http_resp_free(r) == 0);
    CHECK(tide_http_client_idle(c) == 1);
    CHECK(tt_http_get(c, U(base, "/len"), NULL, &all, 0) == 200 && !strcmp(all, "hello"));
    free(all);
    CHECK(tide_http_client_connects(c) == 1 && tide_http_client_reuses(c) == 1);
    CHECK(g_accepts == 1);
    return 0;
}

static void test_content_length(void **st)
{
    (void)st;
    run(c_length, NULL);
}

static int c_chunked(tide_http_client *c, const char *base)
{
    tide_http_resp *r;
    char *all, buf[4];
    size_t len;
    const char *v;
    ssize_t n, total = 0;
    CHECK(tide_http_client_request(c, U(base, "/chunked"), NULL, &r) == 0);
    CHECK(tide_http_resp_content_length(r) == -1);
    CHECK(tide_http_resp_read_all(r, &all, 0) == 11);
    CHECK(!strcmp(all, "hello world"));
    free(all);
    v = tide_http_resp_trailer(r, "x-sum", &len);
    CHECK(v && len == 2 && !memcmp(v, "42", 2));
    tide_http_resp_free(r);
    /* Read in 4-byte pieces: the same bytes, the connection reused. */
    CHECK(tide_http_client_request(c, U(base, "/chunked"), NULL, &r) == 0);
    CHECK(tide_http_resp_reused(r) == 1);
    while ((n = tide_http_resp_read(r, buf, sizeof buf)) > 0)
        total += n;
    CHECK(n == 0 && total == 11);
    tide_http_resp_free(r);
    /* 40 000 bytes in 4000-byte chunks. */
    CHECK(tt_http_get(c, U(base, "/bigchunked"), NULL, &all, 0) == 200);
    CHECK(strlen(all) == 40000 && all[0] == 'c' && all[39999] == 'c');
    free(all);
    CHECK(g_accepts == 1 && tide_http_client_reuses(c) == 2);
    return 0;
}

static void test_chunked_trailers(void **st)
{
    (void)st;
    run(c_chunked, NULL);
}

static int c_until_close(tide_http_client *c, const char *base)
{
    char *all;
    CHECK(tt_http_get(c, U(base, "/close"), NULL, &all, 0) == 200);
    CHECK(!strcmp(all, "until the end"));
    free(all);
    CHECK(tide_http_client_idle(c) == 0); /* never pooled */
    CHECK(tt_http_get(c, U(base, "/len"), NULL, &all, 0) == 200);
    free(all);
    CHECK(g_accepts == 2);
    /* HTTP/1.0 without keep-alive: not pooled either. */
    CHECK(tt_http_get(c, U(base, "/http10"), NULL, &all, 0) == 200 && !strcmp(all, "ok"));
    free(all);
    CHECK(tide_http_client_idle(c) == 0);
    return 0;
}

static void test_until_close(void **st)
{
    (void)st;
    run(c_until_close, NULL);
}

static int c_no_body(tide_http_client *c, const char *base)
{
    tide_http_resp *r;
    tide_http_req_opts o;
    char buf[8], *all;
    tide_http_req_opts_init(&o);
    o.method = "HEAD";
    CHECK(tide_http_client_request(c, U(base, "/head"), &o, &r) == 0);
    CHECK(tide_http_resp_status(r) == 200 && tide_http_resp_content_length(r) == 0);
    CHECK(tide_http_resp_read(r, buf, sizeof buf) == 0);
    tide_http_resp_free(r);
    CHECK(tt_http_get(c, U(base, "/204"), NULL, &all, 0) == 204 && all[0] == 0);
    free(all);
    CHECK(tt_http_get(c, U(base, "/continue"), NULL, &all, 0) == 200 && !strcmp(all, "ok"));
    free(all);
    CHECK(g_accepts == 1); /* all on one connection */
    return 0;
}

static void test_head_204_1xx(void **st)
{
    (void)st;
    run(c_no_body, NULL);
}

/* -------------------------------------------------------------- the pool */

static int c_reuse(tide_http_client *c, const char *base)
{
    char *all;
    for (int i = 0; i < 20; i++) {
        CHECK(tt_http_get(c, U(base, "/len"), NULL, &all, 0) == 200);
        free(all);
    }
    CHECK(g_accepts == 1 && tide_http_client_connects(c) == 1);
    CHECK(tide_http_client_reuses(c) == 19);
    /* A response freed before its body was read closes its connection. */
    {
        tide_http_resp *r;
        CHECK(tide_http_client_request(c, U(base, "/len"), NULL, &r) == 0);
        tide_http_resp_free(r);
        CHECK(tide_http_client_idle(c) == 0);
    }
    CHECK(tt_http_get(c, U(base, "/len"), NULL, &all, 0) == 200);
    free(all);
    CHECK(g_accepts == 2);
    /* Connection: close from the caller: not pooled. */
    {
        tide_http_header h = {"Connection", 10, "close", 5};
        tide_http_req_opts o;
        tide_http_req_opts_init(&o);
        o.headers = &h;
        o.num_headers = 1;
        CHECK(tt_http_get(c, U(base, "/len"), &o, &all, 0) == 200);
        free(all);
        CHECK(tide_http_client_idle(c) == 0);
    }
    return 0;
}

static void test_keepalive_reuse(void **st)
{
    (void)st;
    run(c_reuse, NULL);
}

static int c_stale(tide_http_client *c, const char *base)
{
    char *all;
    tide_http_req_opts o;
    /* /once answers keep-alive and then closes: the next GET finds the
     * pooled connection dead and retries on a new one. */
    CHECK(tt_http_get(c, U(base, "/once"), NULL, &all, 0) == 200);
    free(all);
    CHECK(tide_http_client_idle(c) == 1);
    tide_sleep(20);
    CHECK(tt_http_get(c, U(base, "/len"), NULL, &all, 0) == 200 && !strcmp(all, "hello"));
    free(all);
    CHECK(g_accepts == 2);
    /* A POST is not retried: the error comes back. */
    CHECK(tt_http_get(c, U(base, "/once"), NULL, &all, 0) == 200);
    free(all);
    tide_sleep(20);
    tide_http_req_opts_init(&o);
    o.method = "POST";
    o.body = "x";
    o.body_len = 1;
    {
        int rc = tt_http_get(c, U(base, "/echo"), &o, &all, 0);
        CHECK(rc == -ECONNRESET || rc == -EPIPE);
    }
    CHECK(g_accepts == 2); /* the second /once ran on the retried connection */
    return 0;
}

static void test_stale_retry(void **st)
{
    (void)st;
    run(c_stale, NULL);
}

typedef struct par_arg {
    tide_http_client *c;
    const char *url;
    int ok;
} par_arg;

static int par_task(void *arg)
{
    par_arg *a = arg;
    char *all;
    for (int i = 0; i < 5; i++) {
        if (tt_http_get(a->c, a->url, NULL, &all, 0) != 200)
            return -1;
        free(all);
    }
    a->ok = 1;
    return 0;
}

static int c_per_host(tide_http_client *c, const char *base)
{
    tide_task *t[8];
    par_arg a[8];
    for (int i = 0; i < 8; i++) {
        a[i].c = c;
        a[i].url = U(base, "/len");
        a[i].ok = 0;
        CHECK(tide_create_task(&t[i], par_task, &a[i]) == 0);
    }
    for (int i = 0; i < 8; i++)
        CHECK(tide_await(t[i]) == 0 && a[i].ok);
    /* 8 tasks, 2 slots per host: never more than 2 connections. */
    CHECK(g_accepts <= 2 && tide_http_client_connects(c) <= 2);
    CHECK(tide_http_client_reuses(c) >= 38);
    return 0;
}

static void test_per_host_limit(void **st)
{
    tide_http_client_opts o;
    (void)st;
    tide_http_client_opts_init(&o);
    o.max_per_host = 2;
    o.max_idle_per_host = 2;
    run(c_per_host, &o);
}

static int c_idle_timeout(tide_http_client *c, const char *base)
{
    char *all;
    CHECK(tt_http_get(c, U(base, "/len"), NULL, &all, 0) == 200);
    free(all);
    CHECK(tide_http_client_idle(c) == 1);
    tide_sleep(120);
    CHECK(tt_http_get(c, U(base, "/len"), NULL, &all, 0) == 200);
    free(all);
    CHECK(g_accepts == 2 && tide_http_client_reuses(c) == 0);
    return 0;
}

static void test_idle_timeout(void **st)
{
    tide_http_client_opts o;
    (void)st;
    tide_http_client_opts_init(&o);
    o.idle_timeout_ms = 50;
    run(c_idle_timeout, &o);
}

/* ------------------------------------------------------------ redirects */

static int c_redirects(tide_http_client *c, const char *base)
{
    tide_http_req_opts o;
    tide_http_resp *r;
    char *all;
    tide_http_req_opts_init(&o);
    /* Off by default: the 302 is the answer. */
    CHECK(tt_http_get(c, U(base, "/redir/2"), NULL, &all, 0) == 302 && !strcmp(all, "abc"));
    free(all);
    o.max_redirects = 3;
    CHECK(tide_http_client_request(c, U(base, "/redir/3"), &o, &r) == 0);
    CHECK(tide_http_resp_status(r) == 200);
    CHECK(strstr(tide_http_resp_url(r), "/redir/0") != NULL);
    CHECK(tide_http_resp_read_all(r, &all, 0) == 4 && !strcmp(all, "done"));
    free(all);
    tide_http_resp_free(r);
    /* One too many. */
    CHECK(tt_http_get(c, U(base, "/redir/4"), &o, &all, 0) == -ELOOP && all == NULL);
    /* A redirect with a broken body: its connection is dropped, the next
     * request does not inherit the error. */
    CHECK(tt_http_get(c, U(base, "/redir-badbody"), &o, &all, 0) == 200 && !strcmp(all, "hello"));
    free(all);
    /* Relative with dot segments, a query and a fragment. */
    CHECK(tt_http_get(c, U(base, "/a/b/rel"), &o, &all, 0) == 200 && !strcmp(all, "x=1"));
    free(all);
    /* 303: POST becomes GET without the body. */
    o.method = "POST";
    o.body = "payload";
    o.body_len = 7;
    CHECK(tide_http_client_request(c, U(base, "/see-other"), &o, &r) == 0);
    CHECK(!strncmp(tide_http_resp_header(r, "x-method", NULL), "GET", 3));
    CHECK(tide_http_resp_read_all(r, &all, 0) == 0);
    free(all);
    tide_http_resp_free(r);
    /* 307: same method and body. */
    CHECK(tide_http_client_request(c, U(base, "/temp"), &o, &r) == 0);
    CHECK(!strncmp(tide_http_resp_header(r, "x-method", NULL), "POST", 4));
    CHECK(tide_http_resp_read_all(r, &all, 0) == 7 && !strcmp(all, "payload"));
    free(all);
    tide_http_resp_free(r);
    /* Another origin (localhost vs 127.0.0.1): Authorization is dropped. */
    {
        tide_http_header h = {"Authorization", 13, "Bearer x", 8};
        tide_http_req_opts_init(&o);
        o.max_redirects = 1;
        o.headers = &h;
        o.num_headers = 1;
        CHECK(tide_http_client_request(c, U(base, "/echo"), &o, &r) == 0);
        CHECK(!strncmp(tide_http_resp_header(r, "x-auth", NULL), "yes", 3));
        tide_http_resp_free(r);
        CHECK(tide_http_client_request(c, U(base, "/elsewhere"), &o, &r) == 0);
        CHECK(tide_http_resp_status(r) == 200);
        CHECK(!strncmp(tide_http_resp_header(r, "x-auth", NULL), "no", 2));
        tide_http_resp_free(r);
    }
    return 0;
}

static void test_redirects(void **st)
{
    (void)st;
    run(c_redirects, NULL);
}

/* -------------------------------------------------------------- uploads */

typedef struct up_state {
    int left;
} up_state;

static ssize_t up_fn(void *arg, void *buf, size_t cap)
{
    up_state *u = arg;
    if (u->left == 0)
        return 0;
    u->left--;
    if (cap < 1000)
        return -EIO;
    memset(buf, 'u', 1000);
    tide_sleep(0); /* the producer may suspend */
    return 1000;
}

static ssize_t up_fail(void *arg, void *buf, size_t cap)
{
    (void)arg, (void)buf, (void)cap;
    return -EIO;
}

static int c_upload(tide_http_client *c, const char *base)
{
    tide_http_req_opts o;
    up_state u = {50};
    tide_http_header h = {"X-Tag", 5, "t1", 2};
    tide_http_resp *r;
    char *all;
    static char big[300000];
    tide_http_req_opts_init(&o);
    o.method = "PUT";
    o.body_fn = up_fn;
    o.body_arg = &u;
    o.headers = &h;
    o.num_headers = 1;
    CHECK(tide_http_client_request(c, U(base, "/echo"), &o, &r) == 0);
    CHECK(!strncmp(tide_http_resp_header(r, "x-tag", NULL), "t1", 2));
    CHECK(tide_http_resp_read_all(r, &all, 0) == 50000);
    CHECK(all[0] == 'u' && all[49999] == 'u');
    free(all);
    tide_http_resp_free(r);
    /* A fixed body larger than a write piece. */
    memset(big, 'B', 200000);
    tide_http_req_opts_init(&o);
    o.method = "POST";
    o.body = big;
    o.body_len = 200000;
    CHECK(tt_http_get(c, U(base, "/echo"), &o, &all, 0) == 200);
    CHECK(strlen(all) == 200000 && all[199999] == 'B');
    free(all);
    /* The producer's error aborts the request; nothing is pooled. */
    tide_http_req_opts_init(&o);
    o.method = "POST";
    o.body_fn = up_fail;
    CHECK(tide_http_client_request(c, U(base, "/echo"), &o, &r) == -EIO && r == NULL);
    CHECK(tide_http_client_idle(c) == 0);
    return 0;
}

static void test_upload(void **st)
{
    (void)st;
    run(c_upload, NULL);
}

/* ------------------------------------------------------------- timeouts */

static int c_timeouts(tide_http_client *c, const char *base)
{
    tide_scope sc;
    tide_http_resp *r;
    char buf[16], *all;
    int rc;
    int64_t t0 = tide_now();
    /* The head never comes in time. */
    tide_timeout_begin(&sc, 50);
    rc = tide_http_client_request(c, U(base, "/slow"), NULL, &r);
    tide_timeout_end(&sc);
    CHECK(rc == -ETIMEDOUT && r == NULL);
    CHECK(tide_now() - t0 < 1500);
    CHECK(tide_http_client_idle(c) == 0);
    /* The body stalls: the read times out, the connection is closed. */
    CHECK(tide_http_client_request(c, U(base, "/slowbody"), NULL, &r) == 0);
    tide_timeout_begin(&sc, 50);
    CHECK(tide_http_resp_read(r, buf, 5) == 5);
    rc = (int)tide_http_resp_read(r, buf, sizeof buf);
    tide_timeout_end(&sc);
    CHECK(rc == -ETIMEDOUT);
    CHECK(tide_http_resp_read(r, buf, sizeof buf) == -ETIMEDOUT); /* sticks */
    tide_http_resp_free(r);
    CHECK(tide_http_client_idle(c) == 0);
    /* The client still works, on a new connection. */
    CHECK(tt_http_get(c, U(base, "/len"), NULL, &all, 0) == 200);
    free(all);
    CHECK(g_accepts == 3);
    return 0;
}

static void test_timeouts(void **st)
{
    (void)st;
    run(c_timeouts, NULL);
}

/* ----------------------------------------------------- malformed, limits */

static int c_malformed(tide_http_client *c, const char *base)
{
    tide_http_resp *r;
    char *all, buf[64];
    CHECK(tt_http_get(c, U(base, "/bad"), NULL, &all, 0) == -EBADMSG && !all);
    CHECK(tt_http_get(c, U(base, "/lf"), NULL, &all, 0) == -EBADMSG);
    CHECK(tt_http_get(c, U(base, "/garbage"), NULL, &all, 0) == -EBADMSG);
    CHECK(tt_http_get(c, U(base, "/trunchead"), NULL, &all, 0) == -EPROTO);
    CHECK(tt_http_get(c, U(base, "/trunc"), NULL, &all, 0) == -EPROTO && !all);
    CHECK(tide_http_client_request(c, U(base, "/badchunk"), NULL, &r) == 0);
    CHECK(tide_http_resp_read(r, buf, sizeof buf) == 5);
    CHECK(tide_http_resp_read(r, buf, sizeof buf) == -EBADMSG);
    CHECK(tide_http_resp_read_all(r, &all, 0) == -EBADMSG && !all);
    tide_http_resp_free(r);
    CHECK(tide_http_client_idle(c) == 0);
    /* Unrequested bytes after a body: that connection is not pooled. */
    CHECK(tt_http_get(c, U(base, "/extra"), NULL, &all, 0) == 200 && !strcmp(all, "ok"));
    free(all);
    CHECK(tide_http_client_idle(c) == 0);
    /* Limits. */
    CHECK(tt_http_get(c, U(base, "/manyheaders"), NULL, &all, 0) == -EBADMSG);
    CHECK(tt_http_get(c, U(base, "/bighead"), NULL, &all, 0) == -EMSGSIZE);
    CHECK(tt_http_get(c, U(base, "/big"), NULL, &all, 1000) == -EFBIG && !all);
    CHECK(tt_http_get(c, U(base, "/bigchunked"), NULL, &all, 1000) == -EFBIG && !all);
    CHECK(tt_http_get(c, U(base, "/big"), NULL, &all, 100000) == 200 && strlen(all) == 100000);
    free(all);
    CHECK(tt_http_get(c, U(base, "/nothing"), NULL, &all, 0) == 404);
    free(all);
    /* Nothing refused on the way is pooled but the last answers. */
    CHECK(tide_http_client_idle(c) == 1);
    return 0;
}

static void test_malformed_and_limits(void **st)
{
    (void)st;
    run(c_malformed, NULL);
}

/* -------------------------------------------------------- bad arguments */

static int c_bad_args(tide_http_client *c, const char *base)
{
    tide_http_resp *r = (tide_http_resp *)1;
    tide_http_req_opts o;
    tide_http_header bad_v = {"X-A", 3, "a\r\nInjected: 1", 14};
    tide_http_header bad_n = {"X A", 3, "v", 1};
    tide_http_header cl = {"content-length", 14, "3", 1};
    char buf[4], *all;

    CHECK(tide_http_client_request(NULL, U(base, "/len"), NULL, &r) == -EINVAL && r == NULL);
    CHECK(tide_http_client_request(c, NULL, NULL, &r) == -EINVAL);
    CHECK(tide_http_client_request(c, U(base, "/len"), NULL, NULL) == -EINVAL);
    CHECK(tide_http_client_request(c, "ftp://x/", NULL, &r) == -EINVAL);
    CHECK(tide_http_client_request(c, "http://", NULL, &r) == -EINVAL);
    tide_http_req_opts_init(&o);
    o.method = "GE T";
    CHECK(tide_http_client_request(c, U(base, "/len"), &o, &r) == -EINVAL);
    o.method = "";
    CHECK(tide_http_client_request(c, U(base, "/len"), &o, &r) == -EINVAL);
    tide_http_req_opts_init(&o);
    o.headers = &bad_v;
    o.num_headers = 1;
    CHECK(tide_http_client_request(c, U(base, "/len"), &o, &r) == -EINVAL);
    o.headers = &bad_n;
    CHECK(tide_http_client_request(c, U(base, "/len"), &o, &r) == -EINVAL);
    o.headers = &cl;
    CHECK(tide_http_client_request(c, U(base, "/len"), &o, &r) == -EINVAL);
    o.headers = NULL;
    CHECK(tide_http_client_request(c, U(base, "/len"), &o, &r) == -EINVAL);
    tide_http_req_opts_init(&o);
    o.body_len = 3;
    CHECK(tide_http_client_request(c, U(base, "/len"), &o, &r) == -EINVAL);
    o.body = "abc";
    o.body_fn = up_fail;
    CHECK(tide_http_client_request(c, U(base, "/len"), &o, &r) == -EINVAL);
    tide_http_req_opts_init(&o);
    o.max_redirects = -1;
    CHECK(tide_http_client_request(c, U(base, "/len"), &o, &r) == -EINVAL);
    /* Nothing listens there. */
    CHECK(tide_http_client_request(c, "http://127.0.0.1:1/", NULL, &r) == -ECONNREFUSED);
    /* Response calls on NULL / a freed response. */
    CHECK(tide_http_resp_read(NULL, buf, 4) == -EINVAL);
    CHECK(tide_http_resp_read_all(NULL, &all, 0) == -EINVAL);
    CHECK(tide_http_resp_status(NULL) == -EINVAL);
    CHECK(tide_http_resp_free(NULL) == 0);
    CHECK(tide_http_client_request(c, U(base, "/len"), NULL, &r) == 0);
    CHECK(tide_http_resp_read(r, NULL, 4) == -EINVAL);
    CHECK(tide_http_resp_read_all(r, NULL, 0) == -EINVAL);
    CHECK(tide_http_client_free(c) == -EBUSY); /* a response is out */
    tide_http_resp_free(r);
    CHECK(tide_http_resp_free(r) == -EINVAL);
    CHECK(tide_http_resp_read(r, buf, 4) == -EINVAL);
    return 0;
}

static void test_bad_args(void **st)
{
    tide_http_client *c;
    tide_http_client_opts o;
    tide_http_resp *r;
    (void)st;
    run(c_bad_args, NULL);
    /* Outside a task. */
    assert_int_equal(tide_http_client_new(&c, NULL), 0);
    assert_int_equal(tide_http_client_request(c, "http://127.0.0.1:1/", NULL, &r), -EPERM);
    assert_int_equal(tide_http_client_free(c), 0);
    assert_int_equal(tide_http_client_new(NULL, NULL), -EINVAL);
    tide_http_client_opts_init(&o);
    o.idle_timeout_ms = -1;
    assert_int_equal(tide_http_client_new(&c, &o), -EINVAL);
    tide_http_client_opts_init(&o);
    o.max_per_host = 2;
    o.max_idle_per_host = 3;
    assert_int_equal(tide_http_client_new(&c, &o), -EINVAL);
    assert_int_equal(tide_http_client_free(NULL), 0);
}

/* ------------------------------------------------------------------ URLs */

static void test_url_parse(void **st)
{
    tide_http_url u;
    (void)st;
    assert_int_equal(tide_http_url_parse("http://example.com", &u), 0);
    assert_int_equal(u.tls, 0);
    assert_int_equal(u.port, 80);
    assert_int_equal(u.port_given, 0);
    assert_int_equal(u.host_len, 11);
    assert_memory_equal(u.host, "example.com", 11);
    assert_int_equal(u.path_len, 1);
    assert_memory_equal(u.path, "/", 1);

    assert_int_equal(tide_http_url_parse("HTTPS://Example.com:8443/a/b?q=1#frag", &u), 0);
    assert_int_equal(u.tls, 1);
    assert_int_equal(u.port, 8443);
    assert_int_equal(u.port_given, 1);
    assert_int_equal(u.path_len, 8);
    assert_memory_equal(u.path, "/a/b?q=1", 8);

    assert_int_equal(tide_http_url_parse("https://[::1]:9000/x", &u), 0);
    assert_int_equal(u.host_len, 3);
    assert_memory_equal(u.host, "::1", 3);
    assert_int_equal(u.port, 9000);
    assert_int_equal(tide_http_url_parse("https://[2001:db8::7]", &u), 0);
    assert_int_equal(u.port, 443);
    assert_int_equal(u.host_len, 11);
    assert_int_equal(tide_http_url_parse("http://h?q", &u), 0);
    assert_int_equal(u.path_len, 2);
    assert_int_equal(tide_http_url_parse("http://h:/p", &u), 0);
    assert_int_equal(u.port, 80);

    const char *bad[] = {"",
                         "example.com",
                         "ftp://example.com/",
                         "http:/example.com",
                         "http://",
                         "http:///path",
                         "http://user@example.com/",
                         "http://exa mple.com/",
                         "http://example.com:0/",
                         "http://example.com:65536/",
                         "http://example.com:123456/",
                         "http://example.com:8a/",
                         "http://[::1/",
                         "http://[]/",
                         "http://[1.2.3.4]/",
                         "http://[::1]x/",
                         "http://example.com/a b",
                         "http://example.com/\x01",
                         "http://example.com/\xc3\xa9",
                         "http://ex\tample.com/"};
    for (size_t i = 0; i < TT_ARRAY_LEN(bad); i++)
        assert_int_equal(tide_http_url_parse(bad[i], &u), -EINVAL);
    assert_int_equal(tide_http_url_parse(NULL, &u), -EINVAL);
    assert_int_equal(tide_http_url_parse("http://x/", NULL), -EINVAL);
}

static void test_resolve(void **st)
{
    static const char *const cases[][3] = {
        /* base, Location, result (NULL: refused) */
        {"http://a.test/b/c/d;p?q", "g", "http://a.test/b/c/g"},
        {"http://a.test/b/c/d;p?q", "./g", "http://a.test/b/c/g"},
        {"http://a.test/b/c/d;p?q", "g/", "http://a.test/b/c/g/"},
        {"http://a.test/b/c/d;p?q", "/g", "http://a.test/g"},
        {"http://a.test/b/c/d;p?q", "//g.test/x", "http://g.test/x"},
        {"https://a.test/b/c/d;p?q", "//g.test", "https://g.test"},
        {"http://a.test/b/c/d;p?q", "?y", "http://a.test/b/c/d;p?y"},
        {"http://a.test/b/c/d;p?q", "g?y", "http://a.test/b/c/g?y"},
        {"http://a.test/b/c/d;p?q", "g#s", "http://a.test/b/c/g"},
        {"http://a.test/b/c/d;p?q", "..", "http://a.test/b/"},
        {"http://a.test/b/c/d;p?q", "../", "http://a.test/b/"},
        {"http://a.test/b/c/d;p?q", "../g", "http://a.test/b/g"},
        {"http://a.test/b/c/d;p?q", "../..", "http://a.test/"},
        {"http://a.test/b/c/d;p?q", "../../g", "http://a.test/g"},
        {"http://a.test/b/c/d;p?q", "../../../../g", "http://a.test/g"},
        {"http://a.test/b/c/d;p?q", "/./g", "http://a.test/g"},
        {"http://a.test/b/c/d;p?q", "/../g", "http://a.test/g"},
        {"http://a.test/b/c/d;p?q", "g.", "http://a.test/b/c/g."},
        {"http://a.test/b/c/d;p?q", "..g", "http://a.test/b/c/..g"},
        {"http://a.test/b/c/d;p?q", "./g/.", "http://a.test/b/c/g/"},
        {"http://a.test/b/c/d;p?q", "g/./h", "http://a.test/b/c/g/h"},
        {"http://a.test/b/c/d;p?q", "g/../h", "http://a.test/b/c/h"},
        {"http://a.test:8080", "x", "http://a.test:8080/x"},
        {"http://[::1]:81/a/b", "c?d", "http://[::1]:81/a/c?d"},
        {"http://a.test/x", "HTTPS://b.test/y", "HTTPS://b.test/y"},
        {"http://a.test/x", "mailto:me@a.test", NULL},
        {"http://a.test/x", "/a b", NULL},
        {"http://a.test/x", "/a\x01", NULL},
    };
    (void)st;
    for (size_t i = 0; i < TT_ARRAY_LEN(cases); i++) {
        int err = 0;
        char *r = tide__http_url_resolve(cases[i][0], cases[i][1], strlen(cases[i][1]), &err);
        if (!cases[i][2]) {
            assert_null(r);
            assert_int_equal(err, -EBADMSG);
            continue;
        }
        if (!r || strcmp(r, cases[i][2]) != 0)
            print_error("%s + %s: %s, want %s\n", cases[i][0], cases[i][1], r ? r : "NULL",
                        cases[i][2]);
        assert_non_null(r);
        assert_string_equal(r, cases[i][2]);
        tide__free(r);
    }
    {
        int err = 0;
        assert_null(tide__http_url_resolve("nope", "x", 1, &err));
        assert_int_equal(err, -EINVAL);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_url_parse),
        cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_chunked_trailers),
        cmocka_unit_test(test_until_close),
        cmocka_unit_test(test_head_204_1xx),
        cmocka_unit_test(test_keepalive_reuse),
        cmocka_unit_test(test_stale_retry),
        cmocka_unit_test(test_per_host_limit),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_redirects),
        cmocka_unit_test(test_upload),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_malformed_and_limits),
        cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
