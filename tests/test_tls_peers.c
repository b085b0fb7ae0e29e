/*
 * TLS against other implementations, all on loopback: openssl s_server
 * (tide as the client: echo, ALPN, TLS 1.2 with an RSA certificate,
 * resumption), openssl s_client (tide as the server: echo, mTLS accepted
 * and refused, resumption with -sess_out/-sess_in), curl (HTTPS GETs to a
 * tide server), Python's ssl module (as server and as client, close_notify
 * both ways, ALPN); and 1000 concurrent TLS connections between tide
 * clients and a tide server with every byte checked.  A peer that is not
 * installed skips its test (CI installs them all: openssl, curl, python3).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tide.h"
#include "tide/tls.h"
#include "peer_util.h"
#include "tls_util.h"

static char g_dir[64];

#define P(file) tt_path(g_dir, file)

/* Spawns argv with pipes; waits (up to 5 s) for a stdout line starting
 * with ready (NULL: no wait).  0 or -1. */
static int start_peer(tide_process **p, const char *const *argv, const char *ready)
{
    return tt_peer_start(p, argv, NULL, NULL, TT_PEER_STDIN | TT_PEER_PREFIX, 5000, ready, NULL, 0);
}

/* ------------------------------------------------ tide client, s_server */

typedef struct vs_server {
    int rsa12;
    int rc[3], reused[3];
    ssize_t line[3];
    char got[3][32], alpn[3][16], version[3][16];
} vs_server;

static int vs_server_main(void *arg)
{
    vs_server *x = arg;
    tide_process *p;
    char port[16], acc[32];
    tide_tls_opts o;
    tide_tls_ctx *ctx;
    int pn = tt_free_port();
    snprintf(port, sizeof port, "%d", pn);
    snprintf(acc, sizeof acc, "127.0.0.1:%d", pn);
    const char *argv12[] = {"openssl", "s_server", "-accept", acc, "-cert", P("rsa.pem"), "-key",
                            P("rsa.key"), "-rev", "-tls1_2", NULL};
    const char *argv13[] = {"openssl", "s_server", "-accept", acc, "-cert", P("server.pem"), "-key",
                            P("server.key"), "-rev", "-alpn", "h2,http/1.1", NULL};
    if (start_peer(&p, x->rsa12 ? argv12 : argv13, "ACCEPT") < 0)
        return -1;
    tide_tls_opts_init(&o);
    o.ca_file = P("ca.pem");
    o.alpn = "http/1.1";
    tide_tls_ctx_new(&ctx, TIDE_TLS_CLIENT, &o);
    tide_tls_opts_init(&o);
    o.ctx = ctx;
    for (int i = 0; i < 3; i++) {
        tide_stream *s;
        x->rc[i] = tide_open_tls_connection("localhost", pn, &o, &s);
        if (x->rc[i] < 0)
            continue;
        tide_stream_write(s, "hello, s_server\n", 16);
        x->line[i] = tide_stream_readline(s, x->got[i], sizeof x->got[i]);
        x->reused[i] = tide_tls_session_reused(s);
        snprintf(x->alpn[i], sizeof x->alpn[i], "%s", tide_tls_alpn(s));
        snprintf(x->version[i], sizeof x->version[i], "%s", tide_tls_version(s));
        tide_stream_close(s);
    }
    tide_tls_ctx_free(ctx);
    tt_peer_stop(p);
    return 0;
}

static void check_vs_server(vs_server *x, const char *version, const char *alpn)
{
    for (int i = 0; i < 3; i++) {
        assert_int_equal(x->rc[i], 0);
        assert_int_equal(x->line[i], 16);
        assert_memory_equal(x->got[i], "revres_s ,olleh\n", 16);
        assert_int_equal(x->reused[i], i > 0);
        assert_string_equal(x->version[i], version);
        assert_string_equal(x->alpn[i], alpn);
    }
}

static void test_client_vs_openssl_s_server(void **state)
{
    (void)state;
    TT_NEED("openssl");
    vs_server a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    b.rsa12 = 1;
    TT_RUN(vs_server_main, &a);
    check_vs_server(&a, "TLSv1.3", "http/1.1");
    tt_run_guarded(vs_server_main, &b, 10000, &(int){0});
    check_vs_server(&b, "TLSv1.2", "");
}

/* ------------------------------------------------ s_client, tide server */

typedef struct vs_client {
    int mtls, with_cert, resume;
    int handled, reused_seen, exit1, exit2;
    char out1[32768], out2[32768];
} vs_client;

static int line_handler(tide_stream *s, void *arg)
{
    vs_client *x = arg;
    char buf[256];
    ssize_t n;
    x->handled++;
    if (tide_tls_session_reused(s))
        x->reused_seen++;
    n = tide_stream_readline(s, buf, sizeof buf);
    if (n > 0)
        tide_stream_write(s, buf, (size_t)n);
    return 0; /* the server closes: close_notify, s_client exits */
}

static int run_s_client(vs_client *x, int port, const char *sess_flag, char *out, size_t cap)
{
    char conn[32];
    const char *argv[24];
    int n = 0, code;
    tide_process *p;
    char *o = NULL;
    snprintf(conn, sizeof conn, "127.0.0.1:%d", port);
    argv[n++] = "openssl";
    argv[n++] = "s_client";
    argv[n++] = "-connect";
    argv[n++] = conn;
    argv[n++] = "-CAfile";
    argv[n++] = P("ca.pem");
    argv[n++] = "-servername";
    argv[n++] = "localhost";
    argv[n++] = "-verify_return_error";
    argv[n++] = "-ign_eof";
    if (x->with_cert) {
        argv[n++] = "-cert";
        argv[n++] = P("client.pem");
        argv[n++] = "-key";
        argv[n++] = P("client.key");
    }
    if (sess_flag) {
        argv[n++] = sess_flag;
        argv[n++] = P("s_client.sess");
    }
    argv[n] = NULL;
    if (start_peer(&p, argv, NULL) < 0)
        return -1;
    code = tide_process_communicate(p, "ping from s_client\n", 19, &o, NULL, NULL, NULL);
    snprintf(out, cap, "%s", o ? o : "");
    free(o);
    tide_process_free(p);
    return code;
}

static int vs_client_main(void *arg)
{
    vs_client *x = arg;
    tide_server *srv;
    tide_tls_opts o;
    tide_scope sc;
    tide_tls_opts_init(&o);
    o.cert_file = P("server.pem");
    o.key_file = P("server.key");
    if (x->mtls) {
        o.client_cert = TIDE_TLS_CLIENT_CERT_REQUIRE;
        o.ca_file = P("ca.pem");
    }
    if (tide_start_tls_server("127.0.0.1", 0, line_handler, x, NULL, &o, &srv) < 0)
        return -1;
    tide_timeout_begin(&sc, 8000);
    x->exit1 = run_s_client(x, tide_server_port(srv), x->resume ? "-sess_out" : NULL, x->out1,
                            sizeof x->out1);
    if (x->resume)
        x->exit2 = run_s_client(x, tide_server_port(srv), "-sess_in", x->out2, sizeof x->out2);
    tide_timeout_end(&sc);
    tide_server_close(srv, TIDE_SERVER_CANCEL);
    return 0;
}

static void test_openssl_s_client_vs_server(void **state)
{
    (void)state;
    TT_NEED("openssl");
    vs_client a = {.resume = 1}, m = {.mtls = 1, .with_cert = 1}, r = {.mtls = 1};
    tt_run_guarded(vs_client_main, &a, 10000, &(int){0});
    assert_int_equal(a.exit1, 0);
    assert_non_null(strstr(a.out1, "ping from s_client"));
    assert_non_null(strstr(a.out1, "Verify return code: 0 (ok)"));
    assert_int_equal(a.exit2, 0);
    assert_non_null(strstr(a.out2, "Reused, TLSv1.3"));
    assert_int_equal(a.handled, 2);
    assert_int_equal(a.reused_seen, 1);
    tt_run_guarded(vs_client_main, &m, 10000, &(int){0});
    assert_int_equal(m.exit1, 0);
    assert_non_null(strstr(m.out1, "ping from s_client"));
    assert_int_equal(m.handled, 1);
    tt_run_guarded(vs_client_main, &r, 10000, &(int){0});
    assert_null(strstr(r.out1, "ping from s_client"));
    assert_int_equal(r.handled, 0); /* refused before the handler */
}

/* ------------------------------------------------------ curl, tide server */

static int https_handler(tide_stream *s, void *arg)
{
    char line[1024];
    ssize_t n;
    int *count = arg;
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 14\r\nContent-Type: text/plain\r\n"
                               "\r\nHello, world!\n";
    for (;;) {
        /* headers up to the blank line, then one answer; keep-alive */
        while ((n = tide_stream_readline(s, line, sizeof line)) > 2)
            ;
        if (n <= 0)
            return 0;
        tide_stream_write(s, resp, sizeof resp - 1);
        if (tide_stream_drain(s) < 0)
            return 0;
        (*count)++;
    }
}

typedef struct curl_t {
    int requests, code;
    char out[256];
} curl_t;

static int curl_main(void *arg)
{
    curl_t *x = arg;
    tide_server *srv;
    tide_tls_opts o;
    tide_process *p;
    char url[2][64], res[64];
    char *out = NULL;
    tide_tls_opts_init(&o);
    o.cert_file = P("server.pem");
    o.key_file = P("server.key");
    o.alpn = "http/1.1";
    if (tide_start_tls_server("127.0.0.1", 0, https_handler, &x->requests, NULL, &o, &srv) < 0)
        return -1;
    snprintf(url[0], sizeof url[0], "https://localhost:%d/", tide_server_port(srv));
    snprintf(url[1], sizeof url[1], "https://localhost:%d/again", tide_server_port(srv));
    snprintf(res, sizeof res, "localhost:%d:127.0.0.1", tide_server_port(srv));
    const char *argv[] = {"curl", "-sS", "--max-time", "5", "--cacert", P("ca.pem"), "--resolve",
                          res, url[0], url[1], NULL};
    if (start_peer(&p, argv, NULL) == 0) {
        x->code = tide_process_communicate(p, NULL, 0, &out, NULL, NULL, NULL);
        snprintf(x->out, sizeof x->out, "%s", out ? out : "");
        free(out);
        tide_process_free(p);
    }
    tide_server_close(srv, TIDE_SERVER_CANCEL);
    return 0;
}

static void test_curl_vs_server(void **state)
{
    (void)state;
    TT_NEED("curl");
    curl_t x;
    memset(&x, 0, sizeof x);
    tt_run_guarded(curl_main, &x, 10000, &(int){0});
    print_message("curl: exit %d, %d requests\n", x.code, x.requests);
    assert_int_equal(x.code, 0);
    assert_string_equal(x.out, "Hello, world!\nHello, world!\n");
    assert_int_equal(x.requests, 2); /* one connection, kept alive */
}

/* -------------------------------------------------------------- Python */

static const char py_server[] =
    "import socket, ssl, sys\n"
    "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
    "ctx.load_cert_chain(sys.argv[1], sys.argv[2])\n"
    "ctx.set_alpn_protocols(['h2', 'http/1.1'])\n"
    "ls = socket.socket(); ls.bind(('127.0.0.1', 0)); ls.listen(1)\n"
    "print('READY', ls.getsockname()[1], flush=True)\n"
    "c, _ = ls.accept()\n"
    "t = ctx.wrap_socket(c, server_side=True)\n"
    "n = 0\n"
    "while True:\n"
    "    d = t.recv(65536)\n"
    "    if not d: break\n"
    "    n += len(d); t.sendall(d)\n"
    "t.unwrap(); t.close()\n" /* close_notify answered, then TCP close */
    "print('GOT', n, t.version() if False else '', flush=True)\n";

static const char py_client[] =
    "import socket, ssl, sys\n"
    "ctx = ssl.create_default_context(cafile=sys.argv[1])\n"
    "ctx.set_alpn_protocols(['h2', 'http/1.1'])\n"
    "s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', int(sys.argv[2]))),\n"
    "                    server_hostname='localhost')\n"
    "data = bytes(range(256)) * 400\n"
    "s.sendall(data)\n"
    "got = b''\n"
    "while len(got) < len(data):\n"
    "    d = s.recv(65536)\n"
    "    if not d: break\n"
    "    got += d\n"
    "print('ALPN', s.selected_alpn_protocol(), 'VERSION', s.version(), 'OK', got == data,\n"
    "      flush=True)\n"
    "s.unwrap(); s.close()\n";

typedef struct py {
    size_t got;
    ssize_t end;
    long bad;
    int code, srv_eof;
    char out[512];
} py;

static int py_reader(void *arg)
{
    void **a = arg;
    py *x = a[0];
    tide_stream *s = a[1];
    char buf[20000];
    x->bad = -1;
    for (;;) {
        ssize_t n = tide_stream_read(s, buf, sizeof buf);
        if (n <= 0) {
            x->end = n;
            break;
        }
        if (x->bad < 0 && tt_pat_check(buf, x->got, (size_t)n) >= 0)
            x->bad = (long)x->got;
        x->got += (size_t)n;
    }
    return 0;
}

static int py_as_server_main(void *arg)
{
    py *x = arg;
    tide_process *p;
    tide_stream *s;
    tide_tls_opts o;
    tide_task *r;
    char line[64];
    void *ra[2];
    uint8_t *data = malloc(300000);
    const char *argv[] = {"python3", "-c", py_server, P("server.pem"), P("server.key"), NULL};
    if (start_peer(&p, argv, NULL) < 0)
        return -1;
    if (tide_stream_readline(tide_process_stdout(p), line, sizeof line) <= 6)
        return -1;
    tide_tls_opts_init(&o);
    o.ca_file = P("ca.pem");
    if (tide_open_tls_connection("localhost", atoi(line + 6), &o, &s) == 0) {
        ra[0] = x;
        ra[1] = s;
        tide_create_task(&r, py_reader, ra);
        tt_pat_fill(data, 0, 300000);
        tide_stream_write(s, data, 300000);
        tide_stream_drain(s);
        tide_stream_write_eof(s); /* our close_notify: Python's recv returns b'' */
        tide_await(r); /* ... it answers with its own: a clean 0 here */
        tide_stream_close(s);
    }
    tide_stream_readline(tide_process_stdout(p), x->out, sizeof x->out);
    x->code = tide_process_wait(p, NULL);
    tide_process_free(p);
    free(data);
    return 0;
}

static int py_count_handler(tide_stream *s, void *arg)
{
    py *x = arg;
    char buf[16384];
    ssize_t n;
    while ((n = tide_stream_read(s, buf, sizeof buf)) > 0) {
        tide_stream_write(s, buf, (size_t)n);
        tide_stream_drain(s);
    }
    x->srv_eof = (int)n; /* Python's unwrap: a clean end */
    return 0;
}

static int py_as_client_main(void *arg)
{
    py *x = arg;
    tide_server *srv;
    tide_tls_opts o;
    tide_process *p;
    char port[16];
    char *out = NULL;
    tide_tls_opts_init(&o);
    o.cert_file = P("server.pem");
    o.key_file = P("server.key");
    o.alpn = "http/1.1";
    x->srv_eof = 1;
    if (tide_start_tls_server("127.0.0.1", 0, py_count_handler, x, NULL, &o, &srv) < 0)
        return -1;
    snprintf(port, sizeof port, "%d", tide_server_port(srv));
    const char *argv[] = {"python3", "-c", py_client, P("ca.pem"), port, NULL};
    if (start_peer(&p, argv, NULL) == 0) {
        x->code = tide_process_communicate(p, NULL, 0, &out, NULL, NULL, NULL);
        snprintf(x->out, sizeof x->out, "%s", out ? out : "");
        free(out);
        tide_process_free(p);
    }
    tide_sleep(20);
    tide_server_close(srv, TIDE_SERVER_WAIT);
    return 0;
}

static void test_python_ssl_peers(void **state)
{
    (void)state;
    TT_NEED("python3");
    py a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    tt_run_guarded(py_as_server_main, &a, 15000, &(int){0});
    print_message("python server: %s", a.out);
    assert_int_equal(a.code, 0);
    assert_int_equal(a.got, 300000);
    assert_int_equal(a.bad, -1);
    assert_int_equal(a.end, 0); /* Python's close_notify: a clean end */
    assert_non_null(strstr(a.out, "GOT 300000"));
    tt_run_guarded(py_as_client_main, &b, 15000, &(int){0});
    print_message("python client: %s", b.out);
    assert_int_equal(b.code, 0);
    assert_non_null(strstr(b.out, "ALPN http/1.1 VERSION TLSv1.3 OK True"));
    assert_int_equal(b.srv_eof, 0);
}

/* --------------------------------------- 1000 concurrent TLS connections */

/* 1000 connections; 50 under valgrind (each handshake is ~50x slower there) */
static unsigned NCONN = 1000;
#define NMSG 10
#define MAXMSG 6000

typedef struct load {
    int port, failures, ok, first_err;
    size_t bytes;
    tide_tls_ctx *cctx;
    int64_t ms;
} load;

static uint32_t xs(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

static int load_handler(tide_stream *s, void *arg)
{
    char buf[8192];
    ssize_t n;
    (void)arg;
    while ((n = tide_stream_read(s, buf, sizeof buf)) > 0)
        if (tide_stream_write(s, buf, (size_t)n) != n || tide_stream_drain(s) < 0)
            break;
    return 0;
}

typedef struct lclient {
    load *l;
    uint32_t seed;
} lclient;

static int load_client(void *arg)
{
    lclient *c = arg;
    load *l = c->l;
    tide_tls_opts o;
    tide_stream *s;
    uint8_t out[MAXMSG], in[MAXMSG];
    int rc;
    tide_tls_opts_init(&o);
    o.ctx = l->cctx;
    rc = tide_open_tls_connection("localhost", l->port, &o, &s);
    if (rc < 0) {
        if (!l->first_err)
            l->first_err = rc;
        l->failures++;
        return 0;
    }
    for (int m = 0; m < NMSG; m++) {
        size_t len = 1 + xs(&c->seed) % MAXMSG;
        for (size_t i = 0; i < len; i++)
            out[i] = (uint8_t)xs(&c->seed);
        if (tide_stream_write(s, out, len) != (ssize_t)len ||
            (rc = (int)tide_stream_readexactly(s, in, len)) != (int)len || memcmp(in, out, len)) {
            if (!l->first_err)
                l->first_err = rc < 0 ? rc : -EIO;
            l->failures++;
            tide_stream_close(s);
            return 0;
        }
        l->bytes += len;
    }
    tide_stream_close(s);
    l->ok++;
    return 0;
}

static int load_main(void *arg)
{
    load *l = arg;
    tide_server *srv;
    tide_server_opts so;
    tide_tls_opts o;
    tide_task_opts to;
    tide_group g;
    lclient *cs = calloc(NCONN, sizeof *cs);
    int64_t t0 = tide_now();
    tide_server_opts_init(&so);
    so.backlog = 4096;
    so.stack_size = 64 * 1024;
    tide_tls_opts_init(&o);
    o.cert_file = P("server.pem");
    o.key_file = P("server.key");
    o.handshake_timeout_ms = 60000; /* a loaded machine (sanitizers) is slow */
    if (tide_start_tls_server("127.0.0.1", 0, load_handler, NULL, &so, &o, &srv) < 0)
        return -1;
    l->port = tide_server_port(srv);
    tide_tls_opts_init(&o);
    o.ca_file = P("ca.pem");
    tide_tls_ctx_new(&l->cctx, TIDE_TLS_CLIENT, &o);
    tide_group_init(&g);
    tide_task_opts_init(&to);
    to.stack_size = 64 * 1024;
    for (int i = 0; i < (int)NCONN; i++) {
        cs[i].l = l;
        cs[i].seed = 2463534242u + (uint32_t)i * 7919u;
        tide_group_spawn(&g, load_client, &cs[i], &to, NULL);
    }
    tide_group_wait(&g);
    l->ms = tide_now() - t0;
    tide_server_close(srv, TIDE_SERVER_WAIT);
    tide_tls_ctx_free(l->cctx);
    free(cs);
    return 0;
}

static void test_1000_concurrent_connections(void **state)
{
    (void)state;
    struct rlimit rl;
    int before, expired = 0;

    if (tt_under_valgrind())
        NCONN = 50;
    load l;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 2 * NCONN + 100) {
        rl.rlim_cur = rl.rlim_max < 4 * NCONN ? rl.rlim_max : 4 * NCONN;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    before = tt_count_fds();
    memset(&l, 0, sizeof l);
    tt_run_guarded(load_main, &l, 110000, &expired);
    print_message("%u TLS connections, %d ok, %d failed (%s), %zu bytes checked, %lld ms\n", NCONN,
                  l.ok, l.failures, tide_strerror(l.first_err), l.bytes, (long long)l.ms);
    assert_false(expired);
    assert_int_equal(l.failures, 0);
    assert_int_equal(l.ok, (int)NCONN);
    assert_int_equal(tt_count_fds(), before);
}

/* --------------------------------------------------------------- setup */

static int setup(void **state)
{
    (void)state;
    if (tt_certs_tmpdir(g_dir, sizeof g_dir, "/tmp/tide-tlsp-XXXXXX") < 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tt_rmtree(g_dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_vs_openssl_s_server),
        cmocka_unit_test(test_openssl_s_client_vs_server),
        cmocka_unit_test(test_curl_vs_server),
        cmocka_unit_test(test_python_ssl_peers),
        cmocka_unit_test(test_1000_concurrent_connections),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
