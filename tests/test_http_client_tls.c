/*
 * The HTTP client over TLS against a tide TLS server (no external peer):
 * keep-alive reuse over https, the host name checked (a certificate for
 * another name refused, the client's CA trusted only through its context),
 * a stale TLS connection retried, and a server that never answers the
 * handshake bounded by a timeout scope.  No fd left open.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tide.h"
#include "tide/tls.h"
#include "peer_util.h"
#include "http_util.h"
#include "tls_util.h"

static int g_accepts;

/* Answers GETs; /once closes after its answer. */
static int handler(tide_stream *s, void *arg)
{
    char head[4096];
    (void)arg;
    g_accepts++;
    for (;;) {
        ssize_t n = tide_stream_readuntil(s, "\r\n\r\n", 4, head, sizeof head);
        if (n <= 0)
            return 0;
        if (tide_stream_write(s, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecure", 44) < 0)
            return 0;
        if (!strncmp(head, "GET /once ", 10)) {
            (void)tide_stream_flush(s);
            return 0;
        }
    }
}

/* Accepts TCP connections and never speaks. */
static int mute_handler(tide_stream *s, void *arg)
{
    (void)s, (void)arg;
    return tide_sleep(5000);
}

typedef struct x_ctx {
    int result;
} x_ctx;

static int https_main(void *arg)
{
    x_ctx *x = arg;
    tide_server *srv = NULL, *other = NULL, *mute = NULL;
    tide_tls_opts so, co;
    tide_tls_ctx *ctx = NULL;
    tide_http_client *c = NULL, *d = NULL;
    tide_http_client_opts o;
    char url[128], *body = NULL;
    int rc = 0, port;

    g_accepts = 0;
    tide_tls_opts_init(&so);
    so.cert_file = tt_dir_path("server.pem");
    so.key_file = tt_dir_path("server.key");
    TT_CHECK(tide_start_tls_server("127.0.0.1", 0, handler, NULL, NULL, &so, &srv) == 0);
    port = tide_server_port(srv);
    tide_tls_opts_init(&co);
    co.ca_file = tt_dir_path("ca.pem");
    TT_CHECK(tide_tls_ctx_new(&ctx, TIDE_TLS_CLIENT, &co) == 0);
    tide_http_client_opts_init(&o);
    o.tls_ctx = ctx;
    TT_CHECK(tide_http_client_new(&c, &o) == 0);

    /* Keep-alive over TLS, by name and by IP address. */
    for (int i = 0; i < 5; i++) {
        snprintf(url, sizeof url, "https://localhost:%d/x", port);
        TT_CHECK(tt_http_get(c, url, NULL, &body, 0) == 200 && !strcmp(body, "secure"));
        free(body);
        body = NULL;
    }
    TT_CHECK(g_accepts == 1 && tide_http_client_connects(c) == 1);
    snprintf(url, sizeof url, "https://127.0.0.1:%d/x", port);
    TT_CHECK(tt_http_get(c, url, NULL, &body, 0) == 200);
    free(body);
    body = NULL;
    TT_CHECK(tide_http_client_connects(c) == 2); /* another origin: its own pool */

    /* A stale TLS connection: retried once. */
    snprintf(url, sizeof url, "https://localhost:%d/once", port);
    TT_CHECK(tt_http_get(c, url, NULL, &body, 0) == 200);
    free(body);
    body = NULL;
    tide_sleep(20);
    snprintf(url, sizeof url, "https://localhost:%d/x", port);
    TT_CHECK(tt_http_get(c, url, NULL, &body, 0) == 200 && !strcmp(body, "secure"));
    free(body);
    body = NULL;

    /* The default trust store does not know the test CA. */
    TT_CHECK(tide_http_client_new(&d, NULL) == 0);
    TT_CHECK(tt_http_get(d, url, NULL, &body, 0) == TIDE_TLS_ERR_VERIFY);
    TT_CHECK(tide_http_client_free(d) == 0);
    d = NULL;

    /* A certificate for another name. */
    tide_tls_opts_init(&so);
    so.cert_file = tt_dir_path("wrong.pem");
    so.key_file = tt_dir_path("wrong.key");
    TT_CHECK(tide_start_tls_server("127.0.0.1", 0, handler, NULL, NULL, &so, &other) == 0);
    snprintf(url, sizeof url, "https://localhost:%d/x", tide_server_port(other));
    TT_CHECK(tt_http_get(c, url, NULL, &body, 0) == TIDE_TLS_ERR_VERIFY);

    /* A server that never handshakes: the caller's scope bounds it. */
    TT_CHECK(tide_start_server("127.0.0.1", 0, mute_handler, NULL, NULL, &mute) == 0);
    snprintf(url, sizeof url, "https://localhost:%d/x", tide_server_port(mute));
    {
        tide_scope sc;
        int64_t t0 = tide_now();
        tide_timeout_begin(&sc, 100);
        rc = tt_http_get(c, url, NULL, &body, 0);
        tide_timeout_end(&sc);
        TT_CHECK(rc == -ETIMEDOUT && tide_now() - t0 < 2000);
        rc = 0;
    }
out:
    free(body);
    if (d)
        tide_http_client_free(d);
    if (c && tide_http_client_free(c) < 0)
        rc = -1;
    tide_tls_ctx_free(ctx);
    if (mute)
        tide_server_close(mute, TIDE_SERVER_CANCEL);
    if (other)
        tide_server_close(other, TIDE_SERVER_CANCEL);
    if (srv)
        tide_server_close(srv, TIDE_SERVER_CANCEL);
    x->result = rc;
    return 0;
}

static void test_https(void **st)
{
    x_ctx x = {-1};
    int fds = tt_count_fds();
    (void)st;
    assert_int_equal(tide_run(https_main, &x), 0);
    assert_int_equal(x.result, 0);
    assert_int_equal(tt_count_fds(), fds);
}

static int setup(void **st)
{
    (void)st;
    if (tt_certs_tmpdir(tt_dir(), TT_DIR_CAP, "/tmp/tide-httpc-XXXXXX") < 0)
        return -1;
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_https),
    };
    return cmocka_run_group_tests(tests, setup, tt_dir_teardown);
}
