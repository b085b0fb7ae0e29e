/*
 * The HTTP server over TLS (tide_http_server_opts.tls): the same handler
 * serves https, keep-alive and pipelining work through the TLS stream, a
 * file goes out with tide_tls_sendfile, a client that fails the handshake
 * never reaches the handler.  Loopback, certificates made at run time.
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
#include <unistd.h>

#include "tide.h"
#include "tide/tls.h"
#include "net_util.h"
#include "tls_util.h"

static char g_dir[] = "/tmp/tide_http_tls_XXXXXX";
static char g_path[256];
#define P(name) (snprintf(g_path, sizeof g_path, "%s/%s", g_dir, name), g_path)

static int g_file = -1, g_calls;

static int handler(tide_http_exchange *x, void *arg)
{
    const tide_http_request *r = tide_http_exchange_request(x);
    static const tide_http_header ct = {"Content-Type", 12, "text/plain", 10};
    (void)arg;
    g_calls++;
    if (r->path_len == 5 && !memcmp(r->path, "/file", 5))
        return tide_http_send_file(x, 200, &ct, 1, g_file, 0, 50000);
    if (!tide_stream_is_tls(tide_http_exchange_stream(x)))
        return tide_http_respond(x, 500, &ct, 1, "plain?", 6);
    return tide_http_respond(x, 200, &ct, 1, "secure", 6);
}

static int tls_main(void *arg)
{
    tide_http_server_opts o;
    tide_http_server *srv;
    tide_tls_opts to;
    tide_tls_ctx *ctx;
    tide_stream *c;
    char buf[60000];
    static char data[50000];
    const char *req = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"
                      "GET /file HTTP/1.1\r\nHost: localhost\r\n\r\n";
    ssize_t n;
    size_t got = 0;
    int port;
    (void)arg;

    tt_pat_fill(data, 0, sizeof data);
    g_file = open(P("data.bin"), O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(g_file >= 0);
    assert_int_equal(write(g_file, data, sizeof data), (ssize_t)sizeof data);
    tt_tls_files f;
    tt_tls_server_opts(&to, &f, g_dir);
    assert_int_equal(tide_tls_ctx_new(&ctx, TIDE_TLS_SERVER, &to), 0);
    tide_http_server_opts_init(&o);
    o.tls = ctx;
    assert_int_equal(tide_http_serve(NULL, 0, handler, NULL, &o, &srv), 0);
    tide_tls_ctx_free(ctx); /* the server holds its own reference */
    port = tide_http_server_port(srv);

    tide_tls_opts_init(&to);
    to.ca_file = f.ca;
    to.server_name = "localhost";
    assert_int_equal(tide_open_tls_connection("127.0.0.1", port, &to, &c), 0);
    assert_int_equal(tide_stream_write(c, req, strlen(req)), (ssize_t)strlen(req));
    n = tide_stream_readuntil(c, "\r\n\r\n", 4, buf, sizeof buf);
    assert_true(n > 0);
    assert_non_null(strstr(buf, "HTTP/1.1 200 OK\r\n"));
    assert_int_equal(tide_stream_readexactly(c, buf, 6), 6);
    assert_memory_equal(buf, "secure", 6);
    n = tide_stream_readuntil(c, "\r\n\r\n", 4, buf, sizeof buf);
    assert_true(n > 0);
    buf[n] = 0;
    assert_non_null(strstr(buf, "Content-Length: 50000\r\n"));
    while (got < sizeof data) {
        n = tide_stream_read(c, buf + got, sizeof data - got);
        assert_true(n > 0);
        got += (size_t)n;
    }
    assert_int_equal(tt_pat_check(buf, 0, sizeof data), -1);
    tide_stream_close(c);

    /* a plain-text client: the handshake fails, the handler never runs */
    g_calls = 0;
    assert_int_equal(tide_open_connection("127.0.0.1", port, &c), 0);
    tide_stream_write(c, req, strlen(req));
    n = tide_stream_read(c, buf, sizeof buf);
    assert_true(n >= 0 || n == -ECONNRESET);
    tide_stream_close(c);
    tide_sleep(50);
    assert_int_equal(g_calls, 0);
    assert_int_equal(tide_http_server_close(srv, TIDE_SERVER_WAIT), 0);
    close(g_file);
    return 0;
}

static void test_http_tls(void **state)
{
    int fds = tt_count_fds();
    (void)state;
    TT_RUN(tls_main, NULL);
    assert_int_equal(tt_count_fds(), fds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_tls),
    };
    int rc;
    if (!mkdtemp(g_dir) || tt_certs_make(g_dir) < 0)
        return 1;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
        if (system(cmd) != 0)
            rc = rc ? rc : 1;
    }
    return rc;
}
