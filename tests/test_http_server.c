/*
 * Tests of the HTTP/1.1 server (src/http_server.c): requests and their
 * parts, bodies (Content-Length, chunked, 100-continue, limits, bodies left
 * unread), responses (fixed, streamed, files, HEAD, HTTP/1.0), keep-alive
 * and pipelining, limits and timeouts (slowloris), graceful shutdown,
 * takeover, 1000 keep-alive connections, misuse.  Clients are tide streams
 * in the same loop, over loopback; no external peer.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tide.h"
#include "net_util.h"

/* ------------------------------------------------------------ handler */

typedef struct tstate {
    int file_fd;
    int calls;
    int misuse_ok; /* /misuse saw every expected error */
    int write_rc;  /* what /fail's write after the end returned */
    int takeover_ok;
    tide_http_server *srv; /* for /takeover's close from a handler */
} tstate;

static const tide_http_header CT = {"Content-Type", 12, "text/plain", 10};

static int handler(tide_http_exchange *x, void *arg)
{
    tstate *st = arg;
    const tide_http_request *r = tide_http_exchange_request(x);
    char out[512];
    int n;

    st->calls++;
#define IS(p) (r->path_len == strlen(p) && memcmp(r->path, p, r->path_len) == 0)
    if (IS("/hello"))
        return tide_http_respond(x, 200, &CT, 1, "hello", 5);
    if (IS("/path")) {
        n = snprintf(out, sizeof out, "%.*s|%.*s|%d", (int)r->path_len, r->path,
                     (int)(r->query ? r->query_len : 4), r->query ? r->query : "none",
                     r->version_minor);
        return tide_http_respond(x, 200, &CT, 1, out, (size_t)n);
    }
    if (IS("/hdr")) {
        size_t len = 0;
        const char *v = tide_http_get_header(x, "X-Test", &len);
        n = snprintf(out, sizeof out, "%.*s", (int)len, v ? v : "");
        return tide_http_respond(x, 200, &CT, 1, out, v ? (size_t)n : 0);
    }
    if (IS("/echo")) {
        char *body = NULL;
        ssize_t len = tide_http_read_body_all(x, &body);
        if (len < 0)
            return (int)len;
        n = tide_http_respond(x, 200, &CT, 1, body, (size_t)len);
        free(body);
        return n;
    }
    if (IS("/ignore")) /* leaves the body unread */
        return tide_http_respond(x, 200, &CT, 1, "ignored", 7);
    if (IS("/stream")) {
        if (tide_http_begin(x, 200, &CT, 1) < 0 || tide_http_write(x, "abc", 3) != 3 ||
            tide_http_write(x, "defg", 4) != 4)
            return -1;
        return tide_http_end(x);
    }
    if (IS("/fail")) { /* a streamed response cut short */
        if (tide_http_begin(x, 200, &CT, 1) < 0 || tide_http_write(x, "part", 4) != 4)
            return 0;
        return -1;
    }
    if (IS("/file")) {
        static const tide_http_header h = {"Content-Type", 12, "application/octet-stream", 24};
        return tide_http_send_file(x, 200, &h, 1, st->file_fd, 10, 100000);
    }
    if (IS("/noresp"))
        return 0;
    if (IS("/slow")) {
        tide_sleep(150);
        return tide_http_respond(x, 200, &CT, 1, "slow", 4);
    }
    if (IS("/takeover")) {
        tide_stream *s = tide_http_takeover(x);
        char line[64];
        ssize_t k;
        if (!s)
            return -1;
        st->takeover_ok = tide_http_takeover(x) == NULL &&
                          tide_http_respond(x, 200, NULL, 0, "", 0) == -EBADF &&
                          tide_http_server_close(st->srv, TIDE_SERVER_WAIT) == -EDEADLK;
        k = tide_stream_readline(s, line, sizeof line);
        if (k > 0) {
            tide_stream_write(s, "took:", 5);
            tide_stream_write(s, line, (size_t)k);
        }
        tide_stream_close(s);
        return 0;
    }
    if (IS("/misuse")) {
        static const tide_http_header bad = {"X-Bad", 5, "a\r\nInjected: 1", 15};
        static const tide_http_header badname = {"X Bad", 5, "v", 1};
        char b[4];
        int ok = 1;
        ok &= tide_http_respond(x, 200, &bad, 1, "", 0) == -EINVAL;
        ok &= tide_http_respond(x, 200, &badname, 1, "", 0) == -EINVAL;
        ok &= tide_http_respond(x, 99, NULL, 0, "", 0) == -EINVAL;
        ok &= tide_http_respond(x, 200, NULL, 0, NULL, 3) == -EINVAL;
        ok &= tide_http_write(x, "x", 1) == -EPROTO;
        ok &= tide_http_end(x) == -EPROTO;
        ok &= tide_http_read_body(x, NULL, 3) == -EINVAL;
        ok &= tide_http_read_body(x, b, sizeof b) == 0; /* no body */
        ok &= tide_http_respond(x, 200, &CT, 1, "ok", 2) == 0;
        ok &= tide_http_respond(x, 200, &CT, 1, "ok", 2) == -EALREADY;
        ok &= tide_http_begin(x, 200, NULL, 0) == -EALREADY;
        ok &= tide_http_takeover(x) == NULL;
        ok &= tide_http_send_file(x, 200, NULL, 0, -1, 0, 1) == -EBADF;
        ok &= tide_http_send_file(x, 200, NULL, 0, 0, -1, 1) == -EINVAL;
        ok &= tide_http_send_file(x, 200, NULL, 0, 0, 0, 1) == -EALREADY;
        st->misuse_ok = ok;
        return 0;
    }
    if (IS("/length")) { /* a streamed response with a Content-Length */
        static const tide_http_header cl = {"Content-Length", 14, "6", 1};
        int ok = tide_http_begin(x, 200, &cl, 1) == 0 && tide_http_write(x, "abc", 3) == 3 &&
                 tide_http_write(x, "defg", 4) == -EMSGSIZE && tide_http_write(x, "def", 3) == 3;
        return ok ? tide_http_end(x) : -1;
    }
    return tide_http_respond(x, 404, &CT, 1, "no", 2);
#undef IS
}

/* ------------------------------------------------------------- clients */

typedef struct resp {
    int status;
    char head[2048];
    char body[200000];
    size_t body_len;
    int closed; /* the server closed after it */
} resp;

/* Reads one response (Content-Length or chunked or until close) from s. */
static int read_resp(tide_stream *s, resp *out, int head_req)
{
    tide_http_header h[32];
    tide_http_response pr;
    ssize_t n, k;

    memset(out, 0, offsetof(resp, body));
    out->body_len = 0;
    n = tide_stream_readuntil(s, "\r\n\r\n", 4, out->head, sizeof out->head - 1);
    if (n <= 0)
        return n == 0 ? -ECONNRESET : (int)n;
    out->head[n] = 0;
    tide_http_response_init(&pr, h, 32);
    pr.flags = head_req ? TIDE_HTTP_RESP_TO_HEAD : 0;
    k = tide_http_parse_response(out->head, (size_t)n, &pr);
    if (k != n)
        return -EBADMSG;
    out->status = pr.status;
    if (pr.body == TIDE_HTTP_BODY_LENGTH) {
        if (pr.content_length > sizeof out->body)
            return -EMSGSIZE;
        k = tide_stream_readexactly(s, out->body, (size_t)pr.content_length);
        if (k != (ssize_t)pr.content_length)
            return -EIO;
        out->body_len = (size_t)k;
    } else if (pr.body == TIDE_HTTP_BODY_CHUNKED) {
        tide_http_chunked d;
        char raw[4096];
        tide_http_chunked_init(&d, NULL);
        for (;;) {
            size_t used = 0, got = 0;
            int dr;
            k = tide_stream_read(s, raw, 1); /* byte by byte: nothing past the end */
            if (k <= 0)
                return -EIO;
            dr = tide_http_chunked_decode(&d, raw, (size_t)k, &used, out->body + out->body_len,
                                          sizeof out->body - out->body_len, &got);
            if (dr < 0)
                return -EBADMSG;
            out->body_len += got;
            if (dr == 1)
                break;
        }
    } else if (pr.body == TIDE_HTTP_BODY_UNTIL_CLOSE) {
        for (;;) {
            k = tide_stream_read(s, out->body + out->body_len, sizeof out->body - out->body_len);
            if (k <= 0)
                break;
            out->body_len += (size_t)k;
        }
        out->closed = 1;
    }
    out->body[out->body_len < sizeof out->body ? out->body_len : 0] = 0;
    return 0;
}

/* After a response: 1 if the server closes the connection. */
static int server_closed(tide_stream *s)
{
    char b;
    tide_scope sc;
    ssize_t n;
    tide_timeout_begin(&sc, 1000);
    n = tide_stream_read(s, &b, 1);
    tide_timeout_end(&sc);
    return n == 0 || n == -ECONNRESET;
}

static int send_str(tide_stream *s, const char *str)
{
    return tide_stream_write(s, str, strlen(str)) < 0 ? -1 : 0;
}

static int start(tide_http_server **srv, tstate *st, tide_http_server_opts *o)
{
    int rc = tide_http_serve(NULL, 0, handler, st, o, srv);
    assert_int_equal(rc, 0);
    return tide_http_server_port(*srv);
}

static resp R; /* one at a time; large */

/* ---------------------------------------------------------- basic test */

static int basic_main(void *arg)
{
    tstate st = {0};
    tide_http_server *srv;
    tide_stream *c;
    int port = start(&srv, &st, NULL);
    (void)arg;

    assert_int_equal(tide_open_connection("127.0.0.1", port, &c), 0);
    /* path and query split, version */
    send_str(c, "GET /path?a=1&b=2 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_int_equal(R.status, 200);
    assert_string_equal(R.body, "/path|a=1&b=2|1");
    assert_non_null(strstr(R.head, "\r\nDate: "));
    assert_non_null(strstr(R.head, " GMT\r\n"));
    assert_null(strstr(R.head, "Connection:"));
    /* case-insensitive lookup */
    send_str(c, "GET /hdr HTTP/1.1\r\nHost: x\r\nx-tEsT: value 1 \r\n\r\n");
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_string_equal(R.body, "value 1");
    /* HEAD: the length, no body bytes; the next response follows at once */
    send_str(c, "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_resp(c, &R, 1), 0);
    assert_non_null(strstr(R.head, "Content-Length: 5\r\n"));
    assert_int_equal(R.body_len, 0);
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_string_equal(R.body, "hello");
    /* 404, and a handler that answers nothing: 500 */
    send_str(c, "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_int_equal(R.status, 404);
    send_str(c, "GET /noresp HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_int_equal(R.status, 500);
    assert_true(server_closed(c));
    tide_stream_close(c);

    /* Connection: close from the client */
    assert_int_equal(tide_open_connection("127.0.0.1", port, &c), 0);
    send_str(c, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_non_null(strstr(R.head, "Connection: close\r\n"));
    assert_true(server_closed(c));
    tide_stream_close(c);
    /* HTTP/1.0: closes by default, keeps alive when asked */
    assert_int_equal(tide_open_connection("127.0.0.1", port, &c), 0);
    send_str(c, "GET /path HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_string_equal(R.body, "/path|none|0");
    assert_non_null(strstr(R.head, "Connection: keep-alive\r\n"));
    send_str(c, "GET /hello HTTP/1.0\r\n\r\n");
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_non_null(strstr(R.head, "Connection: close\r\n"));
    assert_true(server_closed(c));
    tide_stream_close(c);
    /* HTTP/1.0 streamed: delimited by the close */
    assert_int_equal(tide_open_connection("127.0.0.1", port, &c), 0);
    send_str(c, "GET /stream HTTP/1.0\r\n\r\n");
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_null(strstr(R.head, "chunked"));
    assert_string_equal(R.body, "abcdefg");
    assert_true(R.closed);
    tide_stream_close(c);
    /* misuse inside a handler */
    assert_int_equal(tide_open_connection("127.0.0.1", port, &c), 0);
    send_str(c, "GET /misuse HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_string_equal(R.body, "ok");
    assert_true(st.misuse_ok);
    tide_stream_close(c);

    assert_int_equal(tide_http_server_close(srv, TIDE_SERVER_WAIT), 0);
    return 0;
}

static void test_http_basic(void **state)
{
    int fds = tt_count_fds();
    (void)state;
    TT_RUN(basic_main, NULL);
    assert_int_equal(tt_count_fds(), fds);
}

/* --------------------------------------------------------------- bodies */

static int body_main(void *arg)
{
    tstate st = {0};
    tide_http_server_opts o;
    tide_http_server *srv;
    tide_stream *c;
    char big[5000];
    int port;
    (void)arg;

    tide_http_server_opts_init(&o);
    o.max_body = 4096;
    o.drain_max = 1000;
    port = start(&srv, &st, &o);
    assert_int_equal(tide_open_connection("127.0.0.1", port, &c), 0);
    /* Content-Length, in two pieces */
    send_str(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello");
    tide_sleep(20);
    send_str(c, " world");
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_string_equal(R.body, "hello world");
    /* chunked, with an extension and a trailer, then a pipelined request */
    send_str(c, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                "5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nX-T: 1\r\n\r\n"
                "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_string_equal(R.body, "hello!");
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_string_equal(R.body, "hello");
    /* a chunked body arriving in pieces, after the head */
    send_str(c, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    tide_sleep(20);
    send_str(c, "3\r\nabc\r\n");
    tide_sleep(20);
    send_str(c, "0\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_string_equal(R.body, "abc");
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_string_equal(R.body, "hello");
    /* a body the handler does not read: drained (small), keep-alive goes on */
    send_str(c, "POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789"
                "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_string_equal(R.body, "ignored");
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_string_equal(R.body, "hello");
    /* chunked and unread */
    send_str(c, "POST /ignore HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                "4\r\nabcd\r\n0\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_string_equal(R.body, "hello");
    /* too long to drain: the answer says close, and the server closes */
    send_str(c, "POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n");
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_non_null(strstr(R.head, "Connection: close"));
    assert_true(server_closed(c));
    tide_stream_close(c);

    /* Content-Length over max_body: 413 before the handler */
    assert_int_equal(tide_open_connection("127.0.0.1", port, &c), 0);
    send_str(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n");
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_int_equal(R.status, 413);
    assert_true(server_closed(c));
    tide_stream_close(c);
    /* chunked over max_body: 413 from the reader */
    assert_int_equal(tide_open_connection("127.0.0.1", port, &c), 0);
    send_str(c, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1388\r\n");
    memset(big, 'x', sizeof big);
    tide_stream_write(c, big, sizeof big);
    send_str(c, "\r\n0\r\n\r\n");
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_int_equal(R.status, 413);
    assert_true(server_closed(c));
    tide_stream_close(c);
    /* a malformed chunked body: 400 */
    assert_int_equal(tide_open_connection("127.0.0.1", port, &c), 0);
    send_str(c, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_int_equal(R.status, 400);
    assert_true(server_closed(c));
    tide_stream_close(c);
    /* the client closes in the middle of the body: no response, no leak */
    assert_int_equal(tide_open_connection("127.0.0.1", port, &c), 0);
    send_str(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc");
    tide_sleep(20);
    tide_stream_close(c);
    /* Expect: 100-continue: answered when the handler reads */
    assert_int_equal(tide_open_connection("127.0.0.1", port, &c), 0);
    send_str(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                "Expect: 100-continue\r\n\r\n");
    {
        char line[64];
        ssize_t n = tide_stream_readuntil(c, "\r\n\r\n", 4, line, sizeof line);
        assert_true(n > 0);
        line[n] = 0;
        assert_string_equal(line, "HTTP/1.1 100 Continue\r\n\r\n");
    }
    send_str(c, "body");
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_string_equal(R.body, "body");
    /* ... and not sent when the handler answers without reading: close */
    send_str(c, "POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
                "Expect: 100-continue\r\n\r\n");
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_int_equal(R.status, 200);
    assert_string_equal(R.body, "ignored");
    assert_true(server_closed(c));
    tide_stream_close(c);

    assert_int_equal(tide_http_server_close(srv, TIDE_SERVER_WAIT), 0);
    return 0;
}

static void test_http_bodies(void **state)
{
    int fds = tt_count_fds();
    (void)state;
    TT_RUN(body_main, NULL);
    assert_int_equal(tt_count_fds(), fds);
}

/* ------------------------------------------- responses: stream and file */

static int resp_main(void *arg)
{
    tstate st = {0};
    tide_http_server *srv;
    tide_stream *c;
    char tmpl[] = "/tmp/tide_http_XXXXXX";
    static char data[100010];
    int port;
    (void)arg;

    st.file_fd = mkstemp(tmpl);
    assert_true(st.file_fd >= 0);
    unlink(tmpl);
    tt_pat_fill(data, 0, sizeof data);
    assert_int_equal(write(st.file_fd, data, sizeof data), (ssize_t)sizeof data);
    port = start(&srv, &st, NULL);
    assert_int_equal(tide_open_connection("127.0.0.1", port, &c), 0);
    send_str(c, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_non_null(strstr(R.head, "Transfer-Encoding: chunked\r\n"));
    assert_string_equal(R.body, "abcdefg");
    send_str(c, "HEAD /stream HTTP/1.1\r\nHost: x\r\n\r\nGET /length HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_resp(c, &R, 1), 0);
    assert_int_equal(R.body_len, 0);
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_string_equal(R.body, "abcdef");
    send_str(c, "GET /file HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_int_equal(R.body_len, 100000);
    assert_int_equal(tt_pat_check(R.body, 10, 100000), -1);
    send_str(c, "HEAD /file HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_resp(c, &R, 1), 0);
    assert_non_null(strstr(R.head, "Content-Length: 100000\r\n"));
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_string_equal(R.body, "hello");
    /* a streamed response cut short by the handler: the connection closes
     * without the last chunk */
    send_str(c, "GET /fail HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_not_equal(read_resp(c, &R, 0), 0);
    tide_stream_close(c);
    assert_int_equal(tide_http_server_close(srv, TIDE_SERVER_WAIT), 0);
    close(st.file_fd);
    return 0;
}

static void test_http_responses(void **state)
{
    int fds = tt_count_fds();
    (void)state;
    TT_RUN(resp_main, NULL);
    assert_int_equal(tt_count_fds(), fds);
}

/* ------------------------------------------------- errors and pipelining */

static int errors_main(void *arg)
{
    tstate st = {0};
    tide_http_server_opts o;
    tide_http_server *srv;
    tide_stream *c;
    char req[4096];
    int port, i;
    size_t n;
    (void)arg;

    tide_http_server_opts_init(&o);
    o.max_head = 1024;
    o.max_headers = 8;
    port = start(&srv, &st, &o);
    static const struct {
        const char *req;
        int status;
    } cases[] = {
        {"NONSENSE\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
         400},
        {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
        {"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\nF: 1\r\nG: 1\r\n"
         "H: 1\r\nI: 1\r\n\r\n",
         431},
    };
    for (i = 0; i < (int)TT_ARRAY_LEN(cases); i++) {
        assert_int_equal(tide_open_connection("127.0.0.1", port, &c), 0);
        send_str(c, cases[i].req);
        assert_int_equal(read_resp(c, &R, 0), 0);
        assert_int_equal(R.status, cases[i].status);
        assert_true(server_closed(c));
        tide_stream_close(c);
    }
    /* a head longer than max_head: 431 */
    assert_int_equal(tide_open_connection("127.0.0.1", port, &c), 0);
    n = (size_t)snprintf(req, sizeof req, "GET /hello HTTP/1.1\r\nHost: x\r\nX: ");
    memset(req + n, 'a', 2000);
    tide_stream_write(c, req, n + 2000);
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_int_equal(R.status, 431);
    assert_true(server_closed(c));
    tide_stream_close(c);

    /* 16 pipelined requests in one write: 16 answers, in order */
    assert_int_equal(tide_open_connection("127.0.0.1", port, &c), 0);
    n = 0;
    for (i = 0; i < 16; i++)
        n += (size_t)snprintf(req + n, sizeof req - n, "GET /path?%d HTTP/1.1\r\nHost: x\r\n\r\n",
                              i);
    tide_stream_write(c, req, n);
    for (i = 0; i < 16; i++) {
        char want[32];
        snprintf(want, sizeof want, "/path|%d|1", i);
        assert_int_equal(read_resp(c, &R, 0), 0);
        assert_string_equal(R.body, want);
    }
    tide_stream_close(c);
    tide_http_server_stats ss;
    tide_http_server_get_stats(srv, &ss);
    assert_true(ss.errors >= 5);
    assert_true(ss.requests >= 16);
    assert_int_equal(tide_http_server_close(srv, TIDE_SERVER_WAIT), 0);
    return 0;
}

static void test_http_errors_pipelining(void **state)
{
    int fds = tt_count_fds();
    (void)state;
    TT_RUN(errors_main, NULL);
    assert_int_equal(tt_count_fds(), fds);
}

/* ------------------------------------------------------------- timeouts */

static int timeouts_main(void *arg)
{
    tstate st = {0};
    tide_http_server_opts o;
    tide_http_server *srv;
    tide_stream *c, *idle;
    const char *req = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    int64_t t0;
    int port, sent = 0;
    (void)arg;

    tide_http_server_opts_init(&o);
    o.idle_timeout_ms = 200;
    o.head_timeout_ms = 300;
    o.body_timeout_ms = 200;
    port = start(&srv, &st, &o);
    /* idle keep-alive: closed after idle_timeout_ms */
    assert_int_equal(tide_open_connection("127.0.0.1", port, &idle), 0);
    send_str(idle, req);
    assert_int_equal(read_resp(idle, &R, 0), 0);
    t0 = tide_now();
    assert_true(server_closed(idle));
    assert_true(tide_now() - t0 >= 150 && tide_now() - t0 < 900);
    tide_stream_close(idle);
    /* slowloris: a head one byte every 40 ms is cut at head_timeout_ms with 408 */
    assert_int_equal(tide_open_connection("127.0.0.1", port, &c), 0);
    t0 = tide_now();
    for (;;) {
        char b;
        tide_scope sc;
        ssize_t k;
        if (tide_stream_write(c, req + sent % 10, 1) < 0)
            break;
        sent++;
        tide_timeout_begin(&sc, 40);
        k = tide_stream_read(c, &b, 1);
        tide_timeout_end(&sc);
        if (k != -ETIMEDOUT) {
            assert_int_equal(k, 1);
            assert_int_equal(b, 'H');
            break;
        }
        assert_true(tide_now() - t0 < 2000);
    }
    assert_true(tide_now() - t0 >= 250);
    assert_true(sent < 40);
    tide_stream_close(c);
    /* a body that stops coming: body timeout, 408 */
    assert_int_equal(tide_open_connection("127.0.0.1", port, &c), 0);
    t0 = tide_now();
    send_str(c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    assert_int_equal(read_resp(c, &R, 0), 0);
    assert_int_equal(R.status, 408);
    assert_true(tide_now() - t0 >= 150 && tide_now() - t0 < 900);
    assert_true(server_closed(c));
    tide_stream_close(c);
    assert_int_equal(tide_http_server_close(srv, TIDE_SERVER_WAIT), 0);
    return 0;
}

static void test_http_timeouts(void **state)
{
    int fds = tt_count_fds();
    (void)state;
    TT_RUN(timeouts_main, NULL);
    assert_int_equal(tt_count_fds(), fds);
}

/* ------------------------------------------------ graceful close, takeover */

typedef struct gc {
    tide_http_server *srv;
    int rc;
} gc;

static int closer(void *arg)
{
    gc *g = arg;
    tide_sleep(50);
    g->rc = tide_http_server_close(g->srv, TIDE_SERVER_WAIT);
    return 0;
}

static int graceful_main(void *arg)
{
    tstate st = {0};
    tide_stream *busy, *idle, *tk;
    tide_task *t;
    gc g = {NULL, 1};
    int port = start(&g.srv, &st, NULL);
    st.srv = g.srv;
    char line[64];
    ssize_t n;
    (void)arg;

    /* takeover: the bytes after the head are still in the stream */
    assert_int_equal(tide_open_connection("127.0.0.1", port, &tk), 0);
    send_str(tk, "GET /takeover HTTP/1.1\r\nHost: x\r\n\r\nraw line\n");
    n = tide_stream_readline(tk, line, sizeof line);
    assert_int_equal(n, 14);
    assert_memory_equal(line, "took:raw line\n", 14);
    assert_true(server_closed(tk));
    assert_true(st.takeover_ok);
    tide_stream_close(tk);

    assert_int_equal(tide_open_connection("127.0.0.1", port, &idle), 0);
    send_str(idle, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_resp(idle, &R, 0), 0);
    assert_int_equal(tide_open_connection("127.0.0.1", port, &busy), 0);
    send_str(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
    tide_sleep(20);
    assert_int_equal(tide_http_server_connections(g.srv), 2);
    assert_int_equal(tide_create_task(&t, closer, &g), 0);
    /* the in-flight request finishes, told to close */
    assert_int_equal(read_resp(busy, &R, 0), 0);
    assert_string_equal(R.body, "slow");
    assert_non_null(strstr(R.head, "Connection: close"));
    assert_true(server_closed(busy));
    /* the idle one was closed */
    assert_true(server_closed(idle));
    assert_int_equal(tide_await(t), 0);
    assert_int_equal(g.rc, 0);
    tide_stream_close(busy);
    tide_stream_close(idle);
    return 0;
}

static void test_http_graceful_takeover(void **state)
{
    int fds = tt_count_fds();
    (void)state;
    TT_RUN(graceful_main, NULL);
    assert_int_equal(tt_count_fds(), fds);
}

/* ------------------------------------------------- 1000 keep-alive conns */

#define MANY 1000

typedef struct many {
    int port, ok;
} many;

static int many_client(void *arg)
{
    many *m = arg;
    tide_stream *c;
    char head[1024], body[64];
    int i;

    if (tide_open_connection("127.0.0.1", m->port, &c) < 0)
        return -1;
    for (i = 0; i < 3; i++) {
        char req[64], want[32];
        ssize_t n;
        int len = snprintf(req, sizeof req, "GET /path?%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
        if (tide_stream_write(c, req, (size_t)len) < 0)
            break;
        n = tide_stream_readuntil(c, "\r\n\r\n", 4, head, sizeof head - 1);
        if (n <= 0)
            break;
        head[n] = 0;
        len = snprintf(want, sizeof want, "/path|%d|1", i);
        if (!strstr(head, "HTTP/1.1 200 OK\r\n"))
            break;
        if (tide_stream_readexactly(c, body, (size_t)len) != len || memcmp(body, want, (size_t)len))
            break;
        if (i == 0)
            tide_sleep(50); /* all the connections open at once */
    }
    tide_stream_close(c);
    if (i == 3)
        m->ok++;
    return 0;
}

static int many_main(void *arg)
{
    tstate st = {0};
    tide_http_server_opts o;
    tide_http_server *srv;
    tide_task *t[MANY];
    many m = {0, 0};
    int i, count = *(int *)arg;

    tide_http_server_opts_init(&o);
    o.server.backlog = 2048;
    o.server.stack_size = 32 * 1024;
    o.max_head = 4096;
    m.port = start(&srv, &st, &o);
    for (i = 0; i < count; i++) {
        tide_task_opts to;
        tide_task_opts_init(&to);
        to.stack_size = 32 * 1024;
        assert_int_equal(tide_create_task_ex(&t[i], NULL, many_client, &m, &to), 0);
    }
    for (i = 0; i < count; i++)
        tide_await(t[i]);
    assert_int_equal(m.ok, count);
    assert_int_equal(tide_http_server_close(srv, TIDE_SERVER_WAIT), 0);
    return 0;
}

static void test_http_1000_keepalive(void **state)
{
    struct rlimit rl;
    int count = tt_under_valgrind() ? 100 : MANY, fds = tt_count_fds(), exp = 0;
    (void)state;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 2 * MANY + 100 && rl.rlim_max >= 2 * MANY + 100) {
        rl.rlim_cur = 2 * MANY + 100;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)(2 * count + 100))
        count = ((int)rl.rlim_cur - 100) / 2;
    assert_int_equal(tt_run_guarded(many_main, &count, 30000, &exp), 0);
    assert_false(exp);
    assert_int_equal(tt_count_fds(), fds);
}

/* ------------------------------------------- connection limit, max_requests */

static int limit_main(void *arg)
{
    tstate st = {0};
    tide_http_server_opts o;
    tide_http_server *srv;
    tide_stream *a, *b;
    char ch;
    tide_scope sc;
    ssize_t n;
    int port;
    (void)arg;

    tide_http_server_opts_init(&o);
    o.server.max_connections = 1;
    o.max_requests = 2;
    port = start(&srv, &st, &o);
    assert_int_equal(tide_open_connection("127.0.0.1", port, &a), 0);
    send_str(a, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_resp(a, &R, 0), 0);
    assert_null(strstr(R.head, "Connection: close"));
    /* a second connection waits in the backlog while the first is open */
    assert_int_equal(tide_open_connection("127.0.0.1", port, &b), 0);
    send_str(b, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    tide_timeout_begin(&sc, 200);
    n = tide_stream_read(b, &ch, 1);
    tide_timeout_end(&sc);
    assert_int_equal(n, -ETIMEDOUT);
    assert_int_equal(tide_http_server_connections(srv), 1);
    /* the first one's second request is its last (max_requests 2) */
    send_str(a, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_resp(a, &R, 0), 0);
    assert_non_null(strstr(R.head, "Connection: close"));
    assert_true(server_closed(a));
    tide_stream_close(a);
    /* then the waiting one is served */
    assert_int_equal(read_resp(b, &R, 0), 0);
    assert_string_equal(R.body, "hello");
    tide_stream_close(b);
    assert_int_equal(tide_http_server_close(srv, TIDE_SERVER_WAIT), 0);
    return 0;
}

static void test_http_limits(void **state)
{
    int fds = tt_count_fds();
    (void)state;
    TT_RUN(limit_main, NULL);
    assert_int_equal(tt_count_fds(), fds);
}

/* ---------------------------------------------------------------- misuse */

static int misuse_main(void *arg)
{
    tide_http_server_opts o;
    tide_http_server *srv = (void *)1;
    (void)arg;
    assert_int_equal(tide_http_serve(NULL, 0, NULL, NULL, NULL, &srv), -EINVAL);
    assert_int_equal(tide_http_serve(NULL, 0, handler, NULL, NULL, NULL), -EINVAL);
    tide_http_server_opts_init(&o);
    o.idle_timeout_ms = -1;
    assert_int_equal(tide_http_serve(NULL, 0, handler, NULL, &o, &srv), -EINVAL);
    assert_null(srv);
    tide_http_server_opts_init(&o);
    o.max_head = 10;
    assert_int_equal(tide_http_serve(NULL, 0, handler, NULL, &o, &srv), -EINVAL);
    tide_http_server_opts_init(&o);
    o.server_name = "a\r\nb";
    assert_int_equal(tide_http_serve(NULL, 0, handler, NULL, &o, &srv), -EINVAL);
    assert_int_equal(tide_http_serve("256.1.1.1", 0, handler, NULL, NULL, &srv) < 0, 1);
    assert_int_equal(tide_http_server_close(NULL, TIDE_SERVER_WAIT), -EINVAL);
    assert_int_equal(tide_http_server_port(NULL), -EINVAL);
    assert_int_equal(tide_http_server_connections(NULL), 0);
    assert_null(tide_http_exchange_request(NULL));
    assert_null(tide_http_get_header(NULL, "x", NULL));
    assert_null(tide_http_takeover(NULL));
    assert_int_equal(tide_http_respond(NULL, 200, NULL, 0, NULL, 0), -EINVAL);
    assert_int_equal(tide_http_read_body(NULL, NULL, 0), -EINVAL);
    assert_int_equal(tide_http_end(NULL), -EINVAL);
    /* a Server field, and a bad close mode */
    tide_http_server_opts_init(&o);
    o.server_name = "tide-test";
    tstate st = {0};
    assert_int_equal(tide_http_serve(NULL, 0, handler, &st, &o, &srv), 0);
    {
        tide_stream *c;
        assert_int_equal(tide_open_connection("127.0.0.1", tide_http_server_port(srv), &c), 0);
        send_str(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_int_equal(read_resp(c, &R, 0), 0);
        assert_non_null(strstr(R.head, "\r\nServer: tide-test\r\n"));
        tide_stream_close(c);
    }
    assert_int_equal(tide_http_server_close(srv, 7), -EINVAL);
    assert_int_equal(tide_http_server_close(srv, TIDE_SERVER_CANCEL), 0);
    return 0;
}

static void test_http_misuse(void **state)
{
    tide_http_server *srv;
    (void)state;
    assert_int_equal(tide_http_serve(NULL, 0, handler, NULL, NULL, &srv), -EPERM);
    TT_RUN(misuse_main, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_basic),
        cmocka_unit_test(test_http_bodies),
        cmocka_unit_test(test_http_responses),
        cmocka_unit_test(test_http_errors_pipelining),
        cmocka_unit_test(test_http_timeouts),
        cmocka_unit_test(test_http_graceful_takeover),
        cmocka_unit_test(test_http_1000_keepalive),
        cmocka_unit_test(test_http_limits),
        cmocka_unit_test(test_http_misuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
