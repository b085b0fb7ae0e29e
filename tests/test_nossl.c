/*
 * What a tide built without TLS (-DTIDE_TLS=OFF, or no OpenSSL 3 found)
 * answers when asked for it; compiled only in such a build (CMakeLists.txt;
 * .ci/run's step 2b is one).  The HTTP server with a TLS context: -ENOTSUP,
 * nothing made (no listening fd, *out NULL); the HTTP client: https://
 * -EPROTONOSUPPORT, also as a redirect's target; tide_ws_connect: wss://
 * -EPROTONOSUPPORT.  Nothing reaches the network for the refused ones.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "tide.h"
#include "tide/http.h"
#include "tide/ws.h"
#include "net_util.h"

static int redirect_handler(tide_http_exchange *x, void *arg)
{
    static const tide_http_header loc = {"Location", 8, "https://127.0.0.1:1/", 20};
    (void)arg;
    return tide_http_respond(x, 302, &loc, 1, NULL, 0);
}

static int nossl_main(void *arg)
{
    tide_http_server_opts so;
    tide_http_server *srv = (tide_http_server *)&so;
    tide_http_client *c;
    tide_http_req_opts ro;
    tide_http_resp *r = (tide_http_resp *)&so;
    tide_ws *ws = (tide_ws *)&so;
    char url[64];
    int fds = tt_count_fds();

    (void)arg;
    /* A server asked to speak TLS: refused before anything is made (the
     * context is never looked at: there is no TLS to make one with). */
    tide_http_server_opts_init(&so);
    so.tls = (struct tide_tls_ctx *)&so;
    assert_int_equal(tide_http_serve("127.0.0.1", 0, redirect_handler, NULL, &so, &srv), -ENOTSUP);
    assert_null(srv);
    assert_int_equal(tt_count_fds(), fds);

    /* https:// from the client, directly and as where a redirect leads. */
    assert_int_equal(tide_http_client_new(&c, NULL), 0);
    assert_int_equal(tide_http_client_request(c, "https://127.0.0.1:1/", NULL, &r),
                     -EPROTONOSUPPORT);
    assert_null(r);
    assert_int_equal(tide_http_client_connects(c), 0);
    assert_int_equal(tide_http_serve("127.0.0.1", 0, redirect_handler, NULL, NULL, &srv), 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", tide_http_server_port(srv));
    tide_http_req_opts_init(&ro);
    ro.max_redirects = 3;
    assert_int_equal(tide_http_client_request(c, url, &ro, &r), -EPROTONOSUPPORT);
    assert_null(r);
    assert_int_equal(tide_http_client_connects(c), 1); /* the http:// one only */
    assert_int_equal(tide_http_client_free(c), 0);
    assert_int_equal(tide_http_server_close(srv, TIDE_SERVER_WAIT), 0);

    /* wss:// */
    assert_int_equal(tide_ws_connect("wss://127.0.0.1:1/", NULL, &ws), -EPROTONOSUPPORT);
    assert_null(ws);
    assert_int_equal(tt_count_fds(), fds);
    return 0;
}

static void test_nossl(void **state)
{
    (void)state;
    TT_RUN(nossl_main, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nossl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
