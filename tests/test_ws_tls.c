/*
 * WebSocket over TLS: tide_ws_connect("wss://localhost:PORT/...") against a
 * tide TLS server (tide_start_tls_server with throw-away certificates from
 * tls_certs.h) that upgrades and echoes: the CA checked (an untrusted one
 * fails the connect and leaves nothing open), messages both ways, a 1 MiB
 * message, the close handshake.  Only built with TLS.
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
#include "tls_util.h"
#include "util.h"
#include "ws_util.h"

static char dir[64];

static int echo_handler(tide_stream *s, void *arg)
{
    (void)arg;
    tide_ws_opts o;
    tide_ws_opts_init(&o);
    o.max_message = 2 << 20;
    tide_ws *ws;
    if (tt_ws_accept_stream(s, &o, &ws) == 0)
        tt_ws_echo(ws);
    return 0;
}

static int wss_main(void *arg)
{
    (void)arg;
    char url[128];
    tt_tls_files f;
    tide_tls_opts so;
    tt_tls_server_opts(&so, &f, dir);
    tide_server *srv;
    assert_int_equal(tide_start_tls_server("127.0.0.1", 0, echo_handler, NULL, NULL, &so, &srv),
                     0);
    snprintf(url, sizeof url, "wss://localhost:%d/secure", tide_server_port(srv));

    /* The system store does not know the test CA: refused. */
    tide_ws *ws = NULL;
    int fds = tt_count_fds();
    int rc = tide_ws_connect(url, NULL, &ws);
    assert_true(rc < 0);
    assert_null(ws);
    /* (the server's side of it ends when it reads our alert) */
    for (int i = 0; i < 100 && tt_count_fds() != fds; i++)
        tide_sleep(10);
    assert_int_equal(tt_count_fds(), fds);

    tide_tls_opts co;
    tide_tls_opts_init(&co);
    co.ca_file = f.ca;
    tide_ws_opts o;
    tide_ws_opts_init(&o);
    o.tls = &co;
    o.max_message = 2 << 20;
    assert_int_equal(tide_ws_connect(url, &o, &ws), 0);
    assert_int_equal(tide_stream_is_tls(tide_ws_stream(ws)), 1);
    tide_ws_msg m;
    assert_int_equal(tide_ws_send(ws, TIDE_WS_OP_TEXT, "over tls", 8), 0);
    assert_int_equal(tide_ws_recv(ws, &m), 0);
    assert_string_equal((const char *)m.data, "over tls");
    size_t big = 1 << 20;
    char *buf = malloc(big);
    assert_non_null(buf);
    for (size_t i = 0; i < big; i++)
        buf[i] = (char)(i * 7);
    assert_int_equal(tide_ws_send(ws, TIDE_WS_OP_BINARY, buf, big), 0);
    assert_int_equal(tide_ws_recv(ws, &m), 0);
    assert_int_equal(m.len, big);
    assert_memory_equal(m.data, buf, big);
    free(buf);
    assert_int_equal(tide_ws_close(ws, 1000, NULL), 0);
    assert_int_equal(tide_server_close(srv, TIDE_SERVER_WAIT), 0);
    return 0;
}

/* wss:// through the HTTP server over TLS and tide_ws_upgrade: a plain
 * HTTPS request first, then the upgrade (pipelined frames come through the
 * TLS stream's read-ahead as well). */
static int upgrade_handler(tide_http_exchange *x, void *arg)
{
    (void)arg;
    const tide_http_request *r = tide_http_exchange_request(x);
    if (r->path_len != 4 || memcmp(r->path, "/wss", 4) != 0)
        return tide_http_respond(x, 200, NULL, 0, "plain", 5);
    tide_ws *ws;
    if (tide_ws_upgrade(x, NULL, &ws) < 0)
        return 0;
    tt_ws_echo(ws);
    return 0;
}

static int upgrade_main(void *arg)
{
    (void)arg;
    char url[128];
    tt_tls_files f;
    tide_tls_opts so;
    tt_tls_server_opts(&so, &f, dir);
    tide_tls_ctx *ctx;
    assert_int_equal(tide_tls_ctx_new(&ctx, TIDE_TLS_SERVER, &so), 0);
    tide_http_server_opts ho;
    tide_http_server_opts_init(&ho);
    ho.tls = ctx;
    tide_http_server *srv;
    assert_int_equal(tide_http_serve("127.0.0.1", 0, upgrade_handler, NULL, &ho, &srv), 0);
    tide_tls_ctx_free(ctx);
    int port = tide_http_server_port(srv);
    tide_tls_opts co;
    tide_tls_opts_init(&co);
    co.ca_file = f.ca;
    /* a plain HTTPS request (tide's HTTP client would do; a raw TLS
     * stream keeps this test's dependencies small) */
    tide_stream *s;
    co.server_name = "localhost";
    assert_int_equal(tide_open_tls_connection("127.0.0.1", port, &co, &s), 0);
    const char req[] = "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    assert_int_equal(tide_stream_write(s, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
    char resp[1024];
    size_t got = 0;
    ssize_t k;
    while ((k = tide_stream_read(s, resp + got, sizeof resp - 1 - got)) > 0)
        got += (size_t)k;
    resp[got] = 0;
    assert_non_null(strstr(resp, "HTTP/1.1 200 "));
    assert_non_null(strstr(resp, "\r\n\r\nplain"));
    tide_stream_close(s);
    co.server_name = NULL;

    snprintf(url, sizeof url, "wss://localhost:%d/wss", port);
    tide_ws_opts o;
    tide_ws_opts_init(&o);
    o.tls = &co;
    tide_ws *ws;
    assert_int_equal(tide_ws_connect(url, &o, &ws), 0);
    tide_ws_msg m;
    for (int i = 0; i < 10; i++) {
        assert_int_equal(tide_ws_send(ws, TIDE_WS_OP_TEXT, "upgraded", 8), 0);
        assert_int_equal(tide_ws_recv(ws, &m), 0);
        assert_string_equal((const char *)m.data, "upgraded");
    }
    assert_int_equal(tide_ws_close(ws, 1000, NULL), 0);
    assert_int_equal(tide_http_server_close(srv, TIDE_SERVER_WAIT), 0);
    return 0;
}

static void test_wss_upgrade(void **state)
{
    (void)state;
    int before = tt_count_fds();
    assert_int_equal(tide_run(upgrade_main, NULL), 0);
    assert_int_equal(tt_count_fds(), before);
}

static void test_wss(void **state)
{
    (void)state;
    int before = tt_count_fds();
    assert_int_equal(tide_run(wss_main, NULL), 0);
    assert_int_equal(tt_count_fds(), before);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/tide-ws-tls-%d", (int)getpid());
    if (tt_certs_make(dir) < 0) {
        fprintf(stderr, "cannot make certificates in %s\n", dir);
        return 1;
    }
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_wss),
                                       cmocka_unit_test(test_wss_upgrade)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        rc = rc ? rc : 1;
    return rc;
}
