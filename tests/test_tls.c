/*
 * TLS streams (src/tls/): tide against tide over loopback TCP, both modes
 * (OpenSSL on the socket; TLS over another stream), every stream call over
 * TLS, verification refusals with the right error, mTLS, ALPN, SNI,
 * resumption that really resumes (SSL_session_reused), broken peers
 * (garbage, truncated and reset handshakes, a peer that never finishes, a
 * close without close_notify), cancellation at every stage, and no fd or
 * memory left behind.  Tests against other implementations (openssl
 * s_server / s_client, curl, Python's ssl) and the 1000-connection load
 * test are in test_tls_peers.c.  Certificates are made at run time
 * (tls_certs.h).  White-box where it matters: includes the private headers.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tide.h"
#include "tide/tls.h"
#include "peer_util.h"
#include "tls/tls_int.h"
#include "tls_util.h"

#define KIB 1024
#define MIB (1024 * 1024)

static char g_dir[64];

#define P(file) tt_path(g_dir, file)

static int spawn(tide_task **t, tide_fn fn, void *arg)
{
    return tide_create_task(t, fn, arg);
}

static void server_opts(tide_tls_opts *o, const char *base)
{
    char c[32], k[32];
    tide_tls_opts_init(o);
    snprintf(c, sizeof c, "%s.pem", base);
    snprintf(k, sizeof k, "%s.key", base);
    o->cert_file = P(c);
    o->key_file = P(k);
}

static void client_opts(tide_tls_opts *o)
{
    tide_tls_opts_init(o);
    o->ca_file = P("ca.pem");
    o->server_name = "localhost";
}

/* ------------------------------------------------------ a handshake pair */

typedef struct side {
    tide_stream *s;
    int role, rc;
    tide_tls_opts o;
    char err[256];
    long verify;
} side;

static int side_start(void *arg)
{
    side *x = arg;
    x->rc = tide_tls_start(x->s, x->role, &x->o);
    if (x->rc < 0)
        tide_tls_error(x->s, x->err, sizeof x->err);
    x->verify = tide_tls_verify_result(x->s);
    return 0;
}

typedef struct pair {
    int sv[2];
    side srv, cli;
} pair;

/* A TCP pair as two plain streams, then both handshakes at once.  The
 * options must be set in p->srv.o / p->cli.o before. */
static int pair_handshake(pair *p)
{
    tide_task *a, *b;
    if (tt_tcp_pair(p->sv, 0) < 0 || tide_stream_open(&p->srv.s, p->sv[1], NULL) < 0 ||
        tide_stream_open(&p->cli.s, p->sv[0], NULL) < 0)
        return -1;
    p->srv.role = TIDE_TLS_SERVER;
    p->cli.role = TIDE_TLS_CLIENT;
    spawn(&a, side_start, &p->srv);
    spawn(&b, side_start, &p->cli);
    tide_await(a);
    tide_await(b);
    return 0;
}

static void pair_close(pair *p)
{
    tide_stream_close(p->srv.s);
    tide_stream_close(p->cli.s);
}

/* -------------------------------------------- echo with every stream call */

typedef struct echo {
    pair p;
    int mode_srv, mode_cli, ok, tls_both;
    ssize_t line, exact, until, any, readn, all_len;
    int which, at_eof, wrc;
    char version[16], cipher[64], subject[128];
    long bad_at, verify;
    size_t got, echoed;
    int reused;
} echo;

static int bulk_writer(void *arg)
{
    echo *e = arg;
    uint8_t *buf = malloc(50000);
    size_t sent = 0;
    while (sent < MIB) {
        size_t n = MIB - sent < 50000 ? MIB - sent : 50000;
        tt_pat_fill(buf, sent, n);
        if (tide_stream_write(e->p.cli.s, buf, n) != (ssize_t)n || tide_stream_drain(e->p.cli.s) < 0) {
            e->wrc = -1;
            break;
        }
        sent += n;
    }
    free(buf);
    if (tide_stream_write_eof(e->p.cli.s) < 0)
        e->wrc = -2;
    return 0;
}

static int bulk_reader(void *arg)
{
    echo *e = arg;
    uint8_t *buf = malloc(70000);
    e->bad_at = -1;
    for (;;) {
        ssize_t n = tide_stream_read(e->p.cli.s, buf, 7000);
        if (n <= 0) {
            e->readn = n;
            break;
        }
        long b = tt_pat_check(buf, e->got, (size_t)n);
        if (b >= 0 && e->bad_at < 0)
            e->bad_at = (long)e->got + b;
        e->got += (size_t)n;
    }
    free(buf);
    return 0;
}

/* The server side: answers lines, then echoes bytes until the end. */
static int echo_server(void *arg)
{
    echo *e = arg;
    tide_stream *s = e->p.srv.s;
    char buf[8192];
    ssize_t n;
    while ((n = tide_stream_readline(s, buf, sizeof buf)) > 0) {
        if (n == 5 && !memcmp(buf, "bulk\n", 5))
            break;
        tide_stream_write(s, buf, (size_t)n);
    }
    for (;;) {
        n = tide_stream_read(s, buf, sizeof buf);
        if (n <= 0)
            break;
        e->echoed += (size_t)n;
        if (tide_stream_write(s, buf, (size_t)n) != n || tide_stream_drain(s) < 0)
            break;
    }
    tide_stream_close(s); /* close_notify after the echo */
    e->p.srv.s = NULL;
    return 0;
}

static int echo_main(void *arg)
{
    echo *e = arg;
    tide_stream *c;
    tide_task *srv, *w, *r;
    char buf[256];
    struct iovec v[3] = {{"read", 4}, {"exactly", 7}, {"\n", 1}};
    tide_stream_delim d[2] = {{"\r\n", 2}, {"!", 1}};
    server_opts(&e->p.srv.o, "server");
    client_opts(&e->p.cli.o);
    if (pair_handshake(&e->p) < 0 || e->p.srv.rc < 0 || e->p.cli.rc < 0)
        return 0;
    c = e->p.cli.s;
    e->tls_both = tide_stream_is_tls(c) && tide_stream_is_tls(e->p.srv.s);
    e->mode_srv = tide__tls_of(e->p.srv.s)->fdmode;
    e->mode_cli = tide__tls_of(c)->fdmode;
    snprintf(e->version, sizeof e->version, "%s", tide_tls_version(c));
    snprintf(e->cipher, sizeof e->cipher, "%s", tide_tls_cipher(c));
    tide_tls_peer_subject(c, e->subject, sizeof e->subject);
    e->verify = tide_tls_verify_result(c);
    e->reused = tide_tls_session_reused(c);
    spawn(&srv, echo_server, e);
    tide_stream_write(c, "a line\n", 7);
    e->line = tide_stream_readline(c, buf, sizeof buf);
    tide_stream_writev(c, v, 3);
    e->exact = tide_stream_readexactly(c, buf, 12);
    e->ok = e->line == 7 && e->exact == 12 && !memcmp(buf, "readexactly\n", 12);
    tide_stream_write(c, "until\r\nmore!\n", 13);
    e->until = tide_stream_readuntil(c, "\r\n", 2, buf, sizeof buf);
    e->any = tide_stream_readuntil_any(c, d, 2, buf, sizeof buf, &e->which);
    e->ok = e->ok && tide_stream_readline(c, buf, sizeof buf) == 1;
    /* bulk both ways at once: one task writes while another reads */
    tide_stream_write(c, "bulk\n", 5);
    spawn(&w, bulk_writer, e);
    spawn(&r, bulk_reader, e);
    tide_await(w);
    tide_await(r);
    e->at_eof = tide_stream_at_eof(c);
    tide_await(srv);
    tide_stream_close(c);
    return 0;
}

static void check_echo(echo *e)
{
    assert_int_equal(e->p.srv.rc, 0);
    assert_int_equal(e->p.cli.rc, 0);
    assert_true(e->tls_both);
    assert_string_equal(e->version, "TLSv1.3");
    assert_true(e->cipher[0] != '\0');
    assert_non_null(strstr(e->subject, "CN = localhost"));
    assert_int_equal(e->verify, 0);
    assert_true(e->ok);
    assert_int_equal(e->until, 7);
    assert_int_equal(e->any, 5);
    assert_int_equal(e->which, 1);
    assert_int_equal(e->wrc, 0);
    assert_int_equal(e->echoed, MIB);
    assert_int_equal(e->got, MIB);
    assert_int_equal(e->bad_at, -1);
    assert_int_equal(e->readn, 0); /* a clean end: the server's close_notify */
    assert_int_equal(e->at_eof, 1);
}

static void test_echo_fd_mode(void **state)
{
    (void)state;
    int before = tt_count_fds();
    echo *e = calloc(1, sizeof *e);
    TT_RUN(echo_main, e);
    check_echo(e);
    assert_int_equal(e->mode_srv, 1); /* OpenSSL on the socket itself */
    assert_int_equal(e->mode_cli, 1);
    assert_int_equal(tt_count_fds(), before);
    free(e);
}

/* ------------------------------------- STARTTLS: bytes read ahead, layers */

typedef struct starttls {
    int sv[2];
    int srv_rc, cli_rc, srv_fdmode, buffered_before;
    ssize_t line, echo;
    char got[64];
    int inner_rc, inner_fdmode, outer_rc;
    ssize_t deep;
    long deep_bad;
} starttls;

static int st_server(void *arg)
{
    starttls *x = arg;
    tide_stream *s;
    tide_tls_opts o;
    char buf[4096];
    ssize_t n;
    tide_stream_open(&s, x->sv[1], NULL);
    /* let the client's hello arrive right behind its STARTTLS line */
    tide_sleep(30);
    x->line = tide_stream_readline(s, buf, sizeof buf);
    x->buffered_before = (int)tide_stream_buffered(s); /* the hello, read ahead */
    server_opts(&o, "server");
    x->srv_rc = tide_tls_start(s, TIDE_TLS_SERVER, &o);
    if (x->srv_rc == 0) {
        x->srv_fdmode = tide__tls_of(s)->fdmode;
        n = tide_stream_readline(s, buf, sizeof buf);
        if (n > 0)
            tide_stream_write(s, buf, (size_t)n);
        /* TLS inside TLS: a second handshake over the first TLS stream */
        x->inner_rc = tide_tls_start(s, TIDE_TLS_SERVER, &o);
        if (x->inner_rc == 0) {
            x->inner_fdmode = tide__tls_of(s)->fdmode;
            while ((n = tide_stream_read(s, buf, sizeof buf)) > 0)
                if (tide_stream_write(s, buf, (size_t)n) != n || tide_stream_drain(s) < 0)
                    break;
        }
    }
    tide_stream_close(s);
    return 0;
}

static int st_reader(void *arg)
{
    void **a = arg;
    starttls *x = a[0];
    tide_stream *s = a[1];
    uint8_t buf[9000];
    size_t got = 0;
    x->deep_bad = -1;
    for (;;) {
        ssize_t n = tide_stream_read(s, buf, sizeof buf);
        if (n <= 0) {
            x->deep = n < 0 ? n : (ssize_t)got;
            break;
        }
        if (x->deep_bad < 0 && tt_pat_check(buf, got, (size_t)n) >= 0)
            x->deep_bad = (long)got;
        got += (size_t)n;
    }
    return 0;
}

static int st_main(void *arg)
{
    starttls *x = arg;
    tide_stream *c;
    tide_tls_opts o;
    tide_task *srv, *r;
    uint8_t *big;
    void *ra[2];
    tt_tcp_pair(x->sv, 0);
    spawn(&srv, st_server, x);
    tide_stream_open(&c, x->sv[0], NULL);
    tide_stream_write(c, "STARTTLS\n", 9);
    client_opts(&o);
    x->cli_rc = tide_tls_start(c, TIDE_TLS_CLIENT, &o); /* the hello follows at once */
    if (x->cli_rc == 0) {
        tide_stream_write(c, "inside\n", 7);
        x->echo = tide_stream_readline(c, x->got, sizeof x->got);
        x->outer_rc = tide_tls_start(c, TIDE_TLS_CLIENT, &o);
        if (x->outer_rc == 0) {
            ra[0] = x;
            ra[1] = c;
            spawn(&r, st_reader, ra);
            big = malloc(256 * KIB);
            tt_pat_fill(big, 0, 256 * KIB);
            tide_stream_write(c, big, 256 * KIB);
            tide_stream_flush(c);
            tide_tls_shutdown(c, 0); /* close_notify of the inner TLS: the server sees EOF */
            tide_await(r);
            free(big);
        }
    }
    tide_stream_close(c);
    tide_await(srv);
    return 0;
}

static void test_starttls_read_ahead_and_layers(void **state)
{
    (void)state;
    int before = tt_count_fds();
    starttls x;
    memset(&x, 0, sizeof x);
    TT_RUN(st_main, &x);
    assert_int_equal(x.line, 9);
    assert_true(x.buffered_before > 0); /* part of the hello was read with the line */
    assert_int_equal(x.srv_rc, 0);
    assert_int_equal(x.cli_rc, 0);
    assert_int_equal(x.srv_fdmode, 0); /* over an inner stream holding those bytes */
    assert_int_equal(x.echo, 7);
    assert_memory_equal(x.got, "inside\n", 7);
    assert_int_equal(x.inner_rc, 0);
    assert_int_equal(x.outer_rc, 0);
    assert_int_equal(x.inner_fdmode, 0);
    assert_int_equal(x.deep, 256 * KIB);
    assert_int_equal(x.deep_bad, -1);
    assert_int_equal(tt_count_fds(), before);
}

/* ------------------------------------------------------------ refusals */

typedef struct refuse {
    const char *srv_base, *name;
    int insecure, min13;
    pair p;
} refuse;

static int refuse_main(void *arg)
{
    refuse *x = arg;
    server_opts(&x->p.srv.o, x->srv_base);
    client_opts(&x->p.cli.o);
    if (x->name)
        x->p.cli.o.server_name = x->name;
    x->p.cli.o.insecure_skip_verify = x->insecure;
    if (pair_handshake(&x->p) < 0)
        return -1;
    if (x->p.srv.rc == 0 && x->p.cli.rc == 0) {
        /* a byte each way proves it works */
        char b;
        tide_stream_write(x->p.cli.s, "x", 1);
        if (tide_stream_read(x->p.srv.s, &b, 1) != 1)
            x->p.srv.rc = -1;
    }
    pair_close(&x->p);
    return 0;
}

static void run_refuse(refuse *x)
{
    int before = tt_count_fds();
    TT_RUN(refuse_main, x);
    print_message("%s as %s: client %s (%s, verify %ld), server %s (%s)\n", x->srv_base,
                  x->name ? x->name : "localhost", tide_strerror(x->p.cli.rc), x->p.cli.err,
                  x->p.cli.verify, tide_strerror(x->p.srv.rc), x->p.srv.err);
    assert_int_equal(tt_count_fds(), before);
    assert_int_equal(ERR_peek_error(), 0); /* nothing left in the thread's queue */
}

static void test_refused_hostname_mismatch(void **state)
{
    (void)state;
    refuse x = {.srv_base = "wrong"};
    run_refuse(&x);
    assert_int_equal(x.p.cli.rc, TIDE_TLS_ERR_VERIFY);
    assert_int_equal(x.p.cli.verify, X509_V_ERR_HOSTNAME_MISMATCH);
    assert_non_null(strstr(x.p.cli.err, "hostname mismatch"));
    assert_true(x.p.srv.rc < 0); /* the client's alert */
}

static void test_refused_unknown_ca(void **state)
{
    (void)state;
    refuse x = {.srv_base = "rogue"};
    run_refuse(&x);
    assert_int_equal(x.p.cli.rc, TIDE_TLS_ERR_VERIFY);
    assert_int_equal(x.p.cli.verify, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
    assert_int_equal(x.p.srv.rc, TIDE_TLS_ERR_VERIFY); /* unknown_ca alert */
}

static void test_refused_expired(void **state)
{
    (void)state;
    refuse x = {.srv_base = "expired"};
    run_refuse(&x);
    assert_int_equal(x.p.cli.rc, TIDE_TLS_ERR_VERIFY);
    assert_int_equal(x.p.cli.verify, X509_V_ERR_CERT_HAS_EXPIRED);
    assert_non_null(strstr(x.p.cli.err, "expired"));
}

static void test_insecure_accepts_anything(void **state)
{
    (void)state;
    refuse x = {.srv_base = "rogue", .name = "not.the.name", .insecure = 1};
    run_refuse(&x);
    assert_int_equal(x.p.cli.rc, 0);
    assert_int_equal(x.p.srv.rc, 0);
}

static void test_ip_address_name(void **state)
{
    (void)state;
    refuse ok = {.srv_base = "server", .name = "127.0.0.1"};
    refuse bad = {.srv_base = "other", .name = "127.0.0.1"};
    run_refuse(&ok);
    assert_int_equal(ok.p.cli.rc, 0);
    run_refuse(&bad);
    assert_int_equal(bad.p.cli.rc, TIDE_TLS_ERR_VERIFY);
}

/* ------------------------------------------------------------------ mTLS */

typedef struct mtls {
    int with_cert, require;
    pair p;
    ssize_t cli_read;
    char subject[128];
} mtls;

static int mtls_main(void *arg)
{
    mtls *x = arg;
    server_opts(&x->p.srv.o, "server");
    x->p.srv.o.ca_file = P("ca.pem");
    x->p.srv.o.client_cert = x->require ? TIDE_TLS_CLIENT_CERT_REQUIRE : TIDE_TLS_CLIENT_CERT_REQUEST;
    client_opts(&x->p.cli.o);
    if (x->with_cert) {
        x->p.cli.o.cert_file = P("client.pem");
        x->p.cli.o.key_file = P("client.key");
    }
    if (pair_handshake(&x->p) < 0)
        return -1;
    if (x->p.srv.rc == 0) {
        tide_tls_peer_subject(x->p.srv.s, x->subject, sizeof x->subject);
        tide_stream_write(x->p.srv.s, "hi", 2);
        tide_stream_flush(x->p.srv.s);
    }
    if (x->p.cli.rc == 0) {
        char b[4];
        x->cli_read = tide_stream_readexactly(x->p.cli.s, b, 2);
    }
    pair_close(&x->p);
    return 0;
}

static void test_mtls_accepted(void **state)
{
    (void)state;
    mtls x = {.with_cert = 1, .require = 1};
    TT_RUN(mtls_main, &x);
    assert_int_equal(x.p.srv.rc, 0);
    assert_int_equal(x.p.cli.rc, 0);
    assert_non_null(strstr(x.subject, "tide client"));
    assert_int_equal(x.cli_read, 2);
}

static void test_mtls_refused(void **state)
{
    (void)state;
    mtls x = {.with_cert = 0, .require = 1};
    mtls opt = {.with_cert = 0, .require = 0};
    TT_RUN(mtls_main, &x);
    print_message("no client cert: server %s (%s); client read %s\n", tide_strerror(x.p.srv.rc),
                  x.p.srv.err, tide_strerror((int)x.cli_read));
    assert_int_equal(x.p.srv.rc, TIDE_TLS_ERR_VERIFY);
    /* TLS 1.3: the client's handshake ends before the server checks; its
     * first read gets the server's certificate_required alert */
    assert_true(x.p.cli.rc == TIDE_TLS_ERR_VERIFY || x.cli_read == TIDE_TLS_ERR_VERIFY);
    /* REQUEST (not REQUIRE): a client without one gets in */
    TT_RUN(mtls_main, &opt);
    assert_int_equal(opt.p.srv.rc, 0);
    assert_int_equal(opt.cli_read, 2);
    assert_string_equal(opt.subject, "");
}

/* ------------------------------------------------------------------ ALPN */

typedef struct alpn {
    const char *srv, *cli;
    pair p;
    char srv_got[32], cli_got[32];
} alpn;

static int alpn_main(void *arg)
{
    alpn *x = arg;
    server_opts(&x->p.srv.o, "server");
    x->p.srv.o.alpn = x->srv;
    client_opts(&x->p.cli.o);
    x->p.cli.o.alpn = x->cli;
    if (pair_handshake(&x->p) < 0)
        return -1;
    snprintf(x->srv_got, sizeof x->srv_got, "%s", tide_tls_alpn(x->p.srv.s));
    snprintf(x->cli_got, sizeof x->cli_got, "%s", tide_tls_alpn(x->p.cli.s));
    pair_close(&x->p);
    return 0;
}

static void test_alpn(void **state)
{
    (void)state;
    alpn a = {.srv = "h2,http/1.1", .cli = "http/1.1,h2"}; /* the server's order wins */
    alpn b = {.srv = "h2,http/1.1", .cli = "spdy/1"};
    alpn c = {.srv = NULL, .cli = "h2"};
    TT_RUN(alpn_main, &a);
    assert_int_equal(a.p.srv.rc, 0);
    assert_int_equal(a.p.cli.rc, 0);
    assert_string_equal(a.srv_got, "h2");
    assert_string_equal(a.cli_got, "h2");
    TT_RUN(alpn_main, &b);
    assert_int_equal(b.p.srv.rc, TIDE_TLS_ERR_HANDSHAKE); /* no_application_protocol */
    assert_true(b.p.cli.rc < 0);
    TT_RUN(alpn_main, &c);
    assert_int_equal(c.p.cli.rc, 0);
    assert_string_equal(c.cli_got, "");
}

/* ------------------------------------------------------------------- SNI */

static tide_tls_ctx *g_other_ctx;

static tide_tls_ctx *pick(const char *name, void *arg)
{
    (void)arg;
    return name && !strcmp(name, "other.test") ? g_other_ctx : NULL;
}

typedef struct sni {
    const char *name;
    pair p;
    char subject[128], srv_name[64];
} sni;

static int sni_main(void *arg)
{
    sni *x = arg;
    tide_tls_opts oo;
    server_opts(&oo, "other");
    if (tide_tls_ctx_new(&g_other_ctx, TIDE_TLS_SERVER, &oo) < 0)
        return -1;
    server_opts(&x->p.srv.o, "server");
    x->p.srv.o.sni = pick;
    client_opts(&x->p.cli.o);
    x->p.cli.o.server_name = x->name;
    if (pair_handshake(&x->p) < 0)
        return -1;
    tide_tls_peer_subject(x->p.cli.s, x->subject, sizeof x->subject);
    snprintf(x->srv_name, sizeof x->srv_name, "%s", tide_tls_server_name(x->p.srv.s));
    pair_close(&x->p);
    tide_tls_ctx_free(g_other_ctx);
    return 0;
}

static void test_sni_picks_certificate(void **state)
{
    (void)state;
    sni a = {.name = "other.test"}, b = {.name = "localhost"};
    TT_RUN(sni_main, &a);
    assert_int_equal(a.p.cli.rc, 0);
    assert_int_equal(a.p.srv.rc, 0);
    assert_non_null(strstr(a.subject, "CN = other.test"));
    assert_string_equal(a.srv_name, "other.test");
    TT_RUN(sni_main, &b);
    assert_int_equal(b.p.cli.rc, 0);
    assert_non_null(strstr(b.subject, "CN = localhost"));
}

/* ------------------------------------------------------------ resumption */

typedef struct resume {
    int tls12, reader;
    tide_server *srv;
    int port, rcs[4], reused[4], srv_reused;
    char version[4][16];
} resume;

static int echo_handler(tide_stream *s, void *arg)
{
    char buf[4096];
    ssize_t n;
    resume *x = arg;
    if (x && tide_tls_session_reused(s))
        x->srv_reused++;
    while ((n = tide_stream_read(s, buf, sizeof buf)) > 0)
        if (tide_stream_write(s, buf, (size_t)n) != n || tide_stream_drain(s) < 0)
            break;
    return 0;
}

static int resume_main(void *arg)
{
    resume *x = arg;
    tide_tls_opts so, co;
    tide_tls_ctx *cctx;
    server_opts(&so, "server");
    if (tide_start_tls_server("127.0.0.1", 0, echo_handler, x, NULL, &so, &x->srv) < 0)
        return -1;
    x->port = tide_server_port(x->srv);
    client_opts(&co);
    if (tide_tls_ctx_new(&cctx, TIDE_TLS_CLIENT, &co) < 0)
        return -1;
    if (x->tls12)
        SSL_CTX_set_max_proto_version(tide_tls_ctx_ssl_ctx(cctx), TLS1_2_VERSION);
    co.ctx = cctx;
    for (int i = 0; i < 4; i++) {
        tide_stream *s;
        char b[8];
        x->rcs[i] = tide_open_tls_connection("localhost", x->port, &co, &s);
        if (x->rcs[i] < 0)
            continue;
        x->reused[i] = tide_tls_session_reused(s);
        snprintf(x->version[i], sizeof x->version[i], "%s", tide_tls_version(s));
        tide_stream_write(s, "ping", 4);
        if (x->reader) { /* read an answer: the tickets come before it */
            if (tide_stream_readexactly(s, b, 4) != 4)
                x->rcs[i] = -1;
        } else {
            tide_sleep(20); /* the tickets arrive; nobody reads them... */
        }
        tide_stream_close(s); /* ... but close takes them */
        tide_sleep(5);
    }
    tide_tls_ctx_free(cctx);
    tide_server_close(x->srv, TIDE_SERVER_CANCEL);
    return 0;
}

static void test_resumption_tls13(void **state)
{
    (void)state;
    resume a = {.reader = 1}, b = {.reader = 0};
    TT_RUN(resume_main, &a);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(a.rcs[i], 0);
        assert_int_equal(a.reused[i], i > 0); /* a full handshake, then resumed ones */
    }
    assert_string_equal(a.version[1], "TLSv1.3");
    assert_int_equal(a.srv_reused, 3);
    TT_RUN(resume_main, &b); /* a client that never reads resumes too */
    for (int i = 0; i < 4; i++)
        assert_int_equal(b.reused[i], i > 0);
}

static void test_resumption_tls12(void **state)
{
    (void)state;
    resume a = {.reader = 1, .tls12 = 1};
    TT_RUN(resume_main, &a);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(a.rcs[i], 0);
        assert_int_equal(a.reused[i], i > 0);
    }
    assert_string_equal(a.version[0], "TLSv1.2");
}

/* TLS 1.3 KeyUpdate both ways in the middle of an echo (the escape hatch:
 * tide_tls_ssl): the update and the peer's answer go through the normal
 * read and write paths, nothing is lost. */
typedef struct ku {
    pair p;
    int ok;
    long bad;
} ku;

static int ku_main(void *arg)
{
    ku *x = arg;
    char out[3000], in[3000];
    server_opts(&x->p.srv.o, "server");
    client_opts(&x->p.cli.o);
    if (pair_handshake(&x->p) < 0 || x->p.srv.rc || x->p.cli.rc)
        return -1;
    x->ok = 1;
    for (int i = 0; i < 20 && x->ok; i++) {
        tide_stream *a = i % 2 ? x->p.srv.s : x->p.cli.s, *b = i % 2 ? x->p.cli.s : x->p.srv.s;
        if (i % 5 == 0 && SSL_key_update(tide_tls_ssl(a), SSL_KEY_UPDATE_REQUESTED) != 1)
            x->ok = 0;
        tt_pat_fill(out, (uint64_t)i * 3000, sizeof out);
        if (tide_stream_write(a, out, sizeof out) != (ssize_t)sizeof out ||
            tide_stream_readexactly(b, in, sizeof in) != (ssize_t)sizeof in ||
            tt_pat_check(in, (uint64_t)i * 3000, sizeof in) != -1)
            x->ok = 0;
    }
    pair_close(&x->p);
    return 0;
}

static void test_key_update(void **state)
{
    (void)state;
    ku x;
    memset(&x, 0, sizeof x);
    TT_RUN(ku_main, &x);
    assert_true(x.ok);
}

/* A TLS server on a Unix socket, a client started over a Unix stream. */
typedef struct unixt {
    int rc, reused;
    ssize_t n;
    char got[8];
} unixt;

static int unix_main(void *arg)
{
    unixt *x = arg;
    tide_server *srv;
    tide_tls_opts so, co;
    tide_stream *s;
    char path[160];
    int fd;
    snprintf(path, sizeof path, "%s/tls.sock", g_dir);
    server_opts(&so, "server");
    if (tide_start_unix_tls_server(path, echo_handler, NULL, NULL, &so, &srv) < 0)
        return -1;
    fd = tide_unix_connect(path);
    if (fd < 0 || tide_stream_open(&s, fd, NULL) < 0)
        return -1;
    client_opts(&co);
    x->rc = tide_tls_start(s, TIDE_TLS_CLIENT, &co);
    if (x->rc == 0) {
        tide_stream_write(s, "unix", 4);
        x->n = tide_stream_readexactly(s, x->got, 4);
    }
    tide_stream_close(s);
    tide_server_close(srv, TIDE_SERVER_CANCEL);
    return 0;
}

static void test_unix_tls_server(void **state)
{
    (void)state;
    int before = tt_count_fds();
    unixt x;
    memset(&x, 0, sizeof x);
    TT_RUN(unix_main, &x);
    assert_int_equal(x.rc, 0);
    assert_int_equal(x.n, 4);
    assert_memory_equal(x.got, "unix", 4);
    assert_int_equal(tt_count_fds(), before);
}

/* ------------------------------------------------------------ broken peers */

typedef struct broken {
    int kind; /* what the raw client does */
    int64_t timeout_ms;
    int port, srv_rc, handled;
    char err[256];
} broken;

enum { GARBAGE, TRUNCATED, RESET, SILENT, NO_CLOSE_NOTIFY, CLEAN };

typedef struct probe {
    broken *b;
} probe;

static int broken_handler(tide_stream *s, void *arg)
{
    broken *b = arg;
    char buf[64];
    b->handled++;
    b->srv_rc = (int)tide_stream_read(s, buf, sizeof buf);
    tide_tls_error(s, b->err, sizeof b->err);
    return 0;
}

/* Records the server's handshake result (hooked through the SNI
 * callback would be too early): the handler is not called on failure, so
 * the test reads the result from a tls server wrapper of its own. */
static int broken_conn(void *arg)
{
    broken *b = arg;
    tide_stream *s;
    tide_tls_opts o;
    int fd = tide_accept(b->port, NULL, NULL); /* b->port holds the listener here */
    if (fd < 0)
        return fd;
    tide_stream_open(&s, fd, NULL);
    server_opts(&o, "server");
    o.handshake_timeout_ms = b->timeout_ms;
    b->srv_rc = tide_tls_start(s, TIDE_TLS_SERVER, &o);
    tide_tls_error(s, b->err, sizeof b->err);
    if (b->srv_rc == 0)
        broken_handler(s, b);
    tide_stream_close(s);
    return 0;
}

/* A real ClientHello's first bytes (from a TLS client of ours over a
 * socketpair), to cut short. */
static int raw_client(void *arg)
{
    broken *b = arg;
    int lfd = b->port;
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd;
    getsockname(lfd, (struct sockaddr *)&a, &len);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (tide_connect(fd, (struct sockaddr *)&a, len) < 0)
        return -1;
    switch (b->kind) {
    case GARBAGE:
        tide_write(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
        tide_sleep(100);
        break;
    case TRUNCATED:
        /* a record header announcing 512 bytes, then 20 of them, then FIN */
        tide_write(fd, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
                       "abcdefghijklmnopqrst", 31);
        break;
    case RESET:
        tide_write(fd, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11);
        tide_sleep(20);
        tt_linger0(fd);
        break;
    case SILENT:
        tide_sleep(600);
        break;
    }
    tide_close(fd);
    return 0;
}

static int broken_main(void *arg)
{
    broken *b = arg;
    tide_task *s, *c;
    int lfd = tide_tcp_listen("127.0.0.1", 0, NULL);
    b->port = lfd;
    spawn(&s, broken_conn, b);
    spawn(&c, raw_client, b);
    tide_await(c);
    tide_await(s);
    tide_close(lfd);
    return 0;
}

static void run_broken(broken *b)
{
    int before = tt_count_fds();
    TT_RUN(broken_main, b);
    print_message("kind %d: server %s (%s)\n", b->kind, tide_strerror(b->srv_rc), b->err);
    assert_int_equal(b->handled, 0);
    assert_int_equal(tt_count_fds(), before);
}

static void test_garbage_instead_of_hello(void **state)
{
    (void)state;
    broken b = {.kind = GARBAGE};
    run_broken(&b);
    assert_int_equal(b.srv_rc, TIDE_TLS_ERR_HANDSHAKE);
}

static void test_truncated_handshake(void **state)
{
    (void)state;
    broken b = {.kind = TRUNCATED};
    run_broken(&b);
    assert_int_equal(b.srv_rc, TIDE_TLS_ERR_TRUNCATED);
}

static void test_reset_mid_handshake(void **state)
{
    (void)state;
    broken b = {.kind = RESET};
    run_broken(&b);
    assert_int_equal(b.srv_rc, -ECONNRESET);
}

static void test_handshake_timeout(void **state)
{
    (void)state;
    broken b = {.kind = SILENT, .timeout_ms = 150};
    int64_t t0 = tide_now();
    run_broken(&b);
    assert_int_equal(b.srv_rc, -ETIMEDOUT);
    assert_non_null(strstr(b.err, "no handshake within 150 ms"));
    assert_true(tide_now() - t0 < 2000);
}

/* After the handshake: a peer that closes without close_notify, and one
 * that sends it. */
typedef struct trunc {
    pair p;
    int clean;
    ssize_t n1, n2;
    char buf[16];
} trunc;

static int trunc_main(void *arg)
{
    trunc *x = arg;
    server_opts(&x->p.srv.o, "server");
    client_opts(&x->p.cli.o);
    if (pair_handshake(&x->p) < 0 || x->p.srv.rc || x->p.cli.rc)
        return -1;
    tide_stream_write(x->p.srv.s, "data", 4);
    tide_stream_flush(x->p.srv.s);
    if (x->clean)
        tide_stream_close(x->p.srv.s); /* close_notify */
    else
        tide_close(tide_stream_fd(x->p.srv.s)); /* the fd goes: no close_notify */
    x->n1 = tide_stream_readexactly(x->p.cli.s, x->buf, 4);
    x->n2 = tide_stream_read(x->p.cli.s, x->buf, sizeof x->buf);
    if (!x->clean)
        tide_stream_close(x->p.srv.s); /* -EBADF for the transport: fine */
    tide_stream_close(x->p.cli.s);
    return 0;
}

static void test_close_without_close_notify(void **state)
{
    (void)state;
    int before = tt_count_fds();
    trunc a = {.clean = 0}, b = {.clean = 1};
    TT_RUN(trunc_main, &a);
    assert_int_equal(a.n1, 4);
    assert_int_equal(a.n2, TIDE_TLS_ERR_TRUNCATED);
    TT_RUN(trunc_main, &b);
    assert_int_equal(b.n1, 4);
    assert_int_equal(b.n2, 0);
    assert_int_equal(tt_count_fds(), before);
}

/* A TLS stream closed while another task waits in its read: the reader
 * wakes with -EBADF, nothing leaks (both modes: fd, and over a stream). */
typedef struct clr {
    pair p;
    int layered;
    ssize_t r;
    int close_rc;
} clr;

static int clr_reader(void *arg)
{
    clr *x = arg;
    char b[16];
    x->r = tide_stream_read(x->p.cli.s, b, sizeof b);
    return 0;
}

static int clr_main(void *arg)
{
    clr *x = arg;
    tide_task *t;
    server_opts(&x->p.srv.o, "server");
    client_opts(&x->p.cli.o);
    if (pair_handshake(&x->p) < 0 || x->p.srv.rc || x->p.cli.rc)
        return -1;
    if (x->layered) { /* TLS inside TLS: the outer one is over a stream */
        side a = x->p.srv, b = x->p.cli;
        tide_task *ta, *tb;
        spawn(&ta, side_start, &a);
        spawn(&tb, side_start, &b);
        tide_await(ta);
        tide_await(tb);
        if (a.rc || b.rc)
            return -1;
    }
    spawn(&t, clr_reader, x);
    tide_sleep(10);
    x->close_rc = tide_stream_close(x->p.cli.s);
    tide_await(t);
    tide_stream_close(x->p.srv.s);
    return 0;
}

static void test_close_wakes_reader(void **state)
{
    (void)state;
    int before = tt_count_fds();
    for (int layered = 0; layered < 2; layered++) {
        clr x;
        memset(&x, 0, sizeof x);
        x.layered = layered;
        TT_RUN(clr_main, &x);
        assert_int_equal(x.close_rc, 0);
        assert_int_equal(x.r, -EBADF);
    }
    assert_int_equal(tt_count_fds(), before);
}

/* A stream closed by another task during its handshake: the handshake
 * ends with -EBADF, the stream and its TLS state go once it has left. */
typedef struct clh {
    pair p;
    side cli;
    int close_rc;
} clh;

static int clh_main(void *arg)
{
    clh *x = arg;
    tide_task *t;
    tt_tcp_pair(x->p.sv, 0); /* the server never answers */
    tide_stream_open(&x->p.srv.s, x->p.sv[1], NULL);
    tide_stream_open(&x->cli.s, x->p.sv[0], NULL);
    client_opts(&x->cli.o);
    x->cli.role = TIDE_TLS_CLIENT;
    spawn(&t, side_start, &x->cli);
    tide_sleep(20);
    x->close_rc = tide_stream_close(x->cli.s);
    tide_await(t);
    tide_stream_close(x->p.srv.s);
    return 0;
}

static void test_close_during_handshake(void **state)
{
    (void)state;
    int before = tt_count_fds();
    clh x;
    memset(&x, 0, sizeof x);
    TT_RUN(clh_main, &x);
    assert_int_equal(x.close_rc, 0);
    assert_int_equal(x.cli.rc, -EBADF);
    assert_int_equal(tt_count_fds(), before);
}

/* An idle connection's record buffers are freed by a timer (a second of
 * no use); the connection then works as before. */
typedef struct idle {
    pair p;
    int armed_busy, armed_idle, ok;
} idle;

static int idle_main(void *arg)
{
    idle *x = arg;
    char b[8];
    server_opts(&x->p.srv.o, "server");
    client_opts(&x->p.cli.o);
    if (pair_handshake(&x->p) < 0 || x->p.srv.rc || x->p.cli.rc)
        return -1;
    tide_stream_write(x->p.cli.s, "ping", 4);
    x->ok = tide_stream_readexactly(x->p.srv.s, b, 4) == 4;
    x->armed_busy = tide__tls_of(x->p.srv.s)->idle_armed;
    tide_sleep(1300);
    x->armed_idle = tide__tls_of(x->p.srv.s)->idle_armed; /* fired, freed, not re-armed */
    tide_stream_write(x->p.srv.s, "pong", 4);
    x->ok = x->ok && tide_stream_readexactly(x->p.cli.s, b, 4) == 4 && !memcmp(b, "pong", 4);
    tide_stream_write(x->p.cli.s, "more", 4);
    x->ok = x->ok && tide_stream_readexactly(x->p.srv.s, b, 4) == 4 && !memcmp(b, "more", 4);
    pair_close(&x->p);
    return 0;
}

static void test_idle_connection_frees_buffers(void **state)
{
    (void)state;
    idle x;
    memset(&x, 0, sizeof x);
    TT_RUN(idle_main, &x);
    assert_int_equal(x.armed_busy, 1);
    assert_int_equal(x.armed_idle, 0);
    assert_true(x.ok);
}

/* --------------------------------------------------------- cancellation */

typedef struct cancel {
    int stage; /* 0 handshake, 1 read, 2 write (drain), 3 shutdown waiting for the peer */
    pair p;
    int rc, close_rc;
    int64_t took;
} cancel;

static int cancel_victim(void *arg)
{
    cancel *x = arg;
    tide_stream *c = x->p.cli.s;
    char *big;
    switch (x->stage) {
    case 0:
        x->rc = tide_tls_start(c, TIDE_TLS_CLIENT, &x->p.cli.o);
        break;
    case 1: {
        char b[16];
        x->rc = (int)tide_stream_read(c, b, sizeof b);
        break;
    }
    case 2:
        big = malloc(8 * MIB);
        memset(big, 'x', 8 * MIB);
        tide_stream_write(c, big, 8 * MIB);
        free(big);
        x->rc = tide_stream_drain(c);
        break;
    case 3:
        x->rc = tide_tls_shutdown(c, TIDE_TLS_WAIT_PEER);
        break;
    }
    return 0;
}

static int cancel_main(void *arg)
{
    cancel *x = arg;
    tide_task *v;
    int64_t t0;
    server_opts(&x->p.srv.o, "server");
    client_opts(&x->p.cli.o);
    if (x->stage == 0) {
        /* the server never answers: a plain stream that reads nothing */
        tt_tcp_pair(x->p.sv, 0);
        tide_stream_open(&x->p.srv.s, x->p.sv[1], NULL);
        tide_stream_open(&x->p.cli.s, x->p.sv[0], NULL);
    } else if (pair_handshake(&x->p) < 0 || x->p.srv.rc || x->p.cli.rc) {
        return -1;
    }
    spawn(&v, cancel_victim, x);
    tide_sleep(50);
    t0 = tide_now();
    tide_cancel(v);
    tide_await(v);
    x->took = tide_now() - t0;
    /* the server goes first: a client flushing 8 MiB at close then fails
     * at once instead of waiting for a reader */
    tide_stream_close(x->p.srv.s);
    x->close_rc = tide_stream_close(x->p.cli.s);
    return 0;
}

static void test_cancel_each_stage(void **state)
{
    (void)state;
    int before = tt_count_fds();
    for (int stage = 0; stage < 4; stage++) {
        cancel x;
        memset(&x, 0, sizeof x);
        x.stage = stage;
        TT_RUN(cancel_main, &x);
        print_message("stage %d: %s after %lld ms\n", stage, tide_strerror(x.rc),
                      (long long)x.took);
        assert_int_equal(x.rc, -ECANCELED);
        assert_true(x.took < 1000); /* at once (a loaded CI machine is slow) */
    }
    assert_int_equal(tt_count_fds(), before);
}

/* A timeout scope bounds a client's handshake the same way. */
typedef struct scoped {
    int sv[2];
    int rc, scope_rc;
} scoped;

static int scoped_main(void *arg)
{
    scoped *x = arg;
    tide_stream *a, *b;
    tide_tls_opts o;
    tide_scope sc;
    tt_tcp_pair(x->sv, 0);
    tide_stream_open(&a, x->sv[0], NULL);
    tide_stream_open(&b, x->sv[1], NULL);
    client_opts(&o);
    tide_timeout_begin(&sc, 80);
    x->rc = tide_tls_start(a, TIDE_TLS_CLIENT, &o);
    x->scope_rc = tide_timeout_end(&sc);
    tide_stream_close(a);
    tide_stream_close(b);
    return 0;
}

static void test_scope_bounds_handshake(void **state)
{
    (void)state;
    scoped x;
    memset(&x, 0, sizeof x);
    TT_RUN(scoped_main, &x);
    assert_int_equal(x.rc, -ETIMEDOUT);
    assert_int_equal(x.scope_rc, -ETIMEDOUT);
}

/* ----------------------------------------------- sendfile, half-close, misc */

typedef struct sf {
    pair p;
    ssize_t sent, got;
    long bad;
    int ktls, eof_read, after;
} sf;

static int sf_reader(void *arg)
{
    sf *x = arg;
    char *all = NULL;
    x->got = tide_stream_read_all(x->p.srv.s, &all, 0); /* until the client's write_eof */
    x->bad = x->got > 0 ? tt_pat_check(all, 1000, (size_t)x->got) : -2;
    free(all);
    /* half-closed: the server can still answer */
    tide_stream_write(x->p.srv.s, "bye\n", 4);
    tide_stream_flush(x->p.srv.s);
    return 0;
}

static int sf_main(void *arg)
{
    sf *x = arg;
    char path[160], buf[8];
    tide_task *r;
    off_t off = 1000;
    int fd;
    uint8_t *data = malloc(MIB + 1000);
    snprintf(path, sizeof path, "%s/sendfile.bin", g_dir);
    tt_pat_fill(data, 0, MIB + 1000);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (write(fd, data, MIB + 1000) != MIB + 1000)
        return -1;
    free(data);
    server_opts(&x->p.srv.o, "server");
    client_opts(&x->p.cli.o);
    if (pair_handshake(&x->p) < 0 || x->p.srv.rc || x->p.cli.rc)
        return -1;
    x->ktls = tide_tls_ktls(x->p.cli.s);
    spawn(&r, sf_reader, x);
    x->sent = tide_tls_sendfile(x->p.cli.s, fd, &off, 2 * MIB); /* stops at the end */
    tide_stream_write_eof(x->p.cli.s);
    tide_stream_flush(x->p.cli.s);
    tide_await(r);
    x->after = (int)tide_stream_readline(x->p.cli.s, buf, sizeof buf);
    close(fd);
    unlink(path);
    pair_close(&x->p);
    return 0;
}

static void test_sendfile_and_half_close(void **state)
{
    (void)state;
    sf x;
    memset(&x, 0, sizeof x);
    TT_RUN(sf_main, &x);
    print_message("kTLS: %s (this kernel has no tls module: the fallback ran)\n",
                  x.ktls ? "on" : "off");
    assert_int_equal(x.sent, MIB);
    assert_int_equal(x.got, MIB);
    assert_int_equal(x.bad, -1);
    assert_int_equal(x.after, 4);
}

/* No common version: a server that wants TLS 1.3, a client that stops at
 * 1.2 (set on its SSL_CTX, given as a prepared context: tide_tls_ctx_wrap).
 * Then the same context against a server that accepts 1.2. */
typedef struct ver {
    pair p, q;
    char version[16], err[256];
} ver;

static int ver_main(void *arg)
{
    ver *x = arg;
    SSL_CTX *sc = SSL_CTX_new(TLS_client_method());
    tide_tls_ctx *c;
    SSL_CTX_set_max_proto_version(sc, TLS1_2_VERSION);
    SSL_CTX_set_verify(sc, SSL_VERIFY_PEER, NULL);
    SSL_CTX_load_verify_locations(sc, P("ca.pem"), NULL);
    if (tide_tls_ctx_wrap(&c, TIDE_TLS_CLIENT, sc) < 0)
        return -1;
    SSL_CTX_free(sc); /* the context keeps its own reference */
    server_opts(&x->p.srv.o, "server");
    x->p.srv.o.min_version = TIDE_TLS_1_3;
    client_opts(&x->p.cli.o);
    x->p.cli.o.ctx = c;
    if (pair_handshake(&x->p) < 0)
        return -1;
    pair_close(&x->p);
    server_opts(&x->q.srv.o, "server");
    client_opts(&x->q.cli.o);
    x->q.cli.o.ctx = c;
    if (pair_handshake(&x->q) < 0)
        return -1;
    snprintf(x->version, sizeof x->version, "%s", tide_tls_version(x->q.cli.s));
    pair_close(&x->q);
    tide_tls_ctx_free(c);
    return 0;
}

static void test_no_common_version_and_wrapped_ctx(void **state)
{
    (void)state;
    ver *x = calloc(1, sizeof *x);
    TT_RUN(ver_main, x);
    print_message("1.2 client vs 1.3 server: client %s (%s), server %s (%s)\n",
                  tide_strerror(x->p.cli.rc), x->p.cli.err, tide_strerror(x->p.srv.rc),
                  x->p.srv.err);
    assert_int_equal(x->p.srv.rc, TIDE_TLS_ERR_HANDSHAKE);
    assert_int_equal(x->p.cli.rc, TIDE_TLS_ERR_HANDSHAKE);
    assert_int_equal(x->q.cli.rc, 0);
    assert_int_equal(x->q.srv.rc, 0);
    assert_string_equal(x->version, "TLSv1.2");
    free(x);
}

static void test_strerror_and_misuse(void **state)
{
    (void)state;
    tide_tls_ctx *c;
    tide_tls_opts o;
    assert_string_equal(tide_strerror(TIDE_TLS_ERR_VERIFY), "TLS: certificate verification failed");
    assert_non_null(strstr(tide_strerror(TIDE_TLS_ERR_TRUNCATED), "close_notify"));
    assert_true(TIDE_IS_TLS_ERR(TIDE_TLS_ERR_CONFIG));
    assert_false(TIDE_IS_TLS_ERR(-EINVAL));
    assert_int_equal(tide_tls_start(NULL, TIDE_TLS_CLIENT, NULL), -EINVAL);
    tide_tls_opts_init(&o);
    assert_int_equal(tide_tls_ctx_new(&c, TIDE_TLS_SERVER, &o), -EINVAL); /* no certificate */
    o.cert_file = P("nope.pem");
    o.key_file = P("nope.key");
    assert_int_equal(tide_tls_ctx_new(&c, TIDE_TLS_SERVER, &o), -ENOENT);
    o.cert_file = P("server.pem");
    o.key_file = P("other.key");
    assert_int_equal(tide_tls_ctx_new(&c, TIDE_TLS_SERVER, &o), TIDE_TLS_ERR_CONFIG);
    o.key_file = P("server.key");
    o.alpn = "h2,,x";
    assert_int_equal(tide_tls_ctx_new(&c, TIDE_TLS_SERVER, &o), -EINVAL);
    o.alpn = NULL;
    o.min_version = 7;
    assert_int_equal(tide_tls_ctx_new(&c, TIDE_TLS_SERVER, &o), -EINVAL);
    o.min_version = TIDE_TLS_1_3;
    assert_int_equal(tide_tls_ctx_new(&c, TIDE_TLS_SERVER, &o), 0);
    tide_tls_ctx_free(c);
    assert_int_equal(ERR_peek_error(), 0);
}

/* --------------------------------------------------------------- setup */

static int setup(void **state)
{
    (void)state;
    if (tt_certs_tmpdir(g_dir, sizeof g_dir, "/tmp/tide-tls-XXXXXX") < 0)
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
        cmocka_unit_test(test_echo_fd_mode),
        cmocka_unit_test(test_starttls_read_ahead_and_layers),
        cmocka_unit_test(test_refused_hostname_mismatch),
        cmocka_unit_test(test_refused_unknown_ca),
        cmocka_unit_test(test_refused_expired),
        cmocka_unit_test(test_insecure_accepts_anything),
        cmocka_unit_test(test_ip_address_name),
        cmocka_unit_test(test_mtls_accepted),
        cmocka_unit_test(test_mtls_refused),
        cmocka_unit_test(test_alpn),
        cmocka_unit_test(test_sni_picks_certificate),
        cmocka_unit_test(test_resumption_tls13),
        cmocka_unit_test(test_resumption_tls12),
        cmocka_unit_test(test_key_update),
        cmocka_unit_test(test_unix_tls_server),
        cmocka_unit_test(test_garbage_instead_of_hello),
        cmocka_unit_test(test_truncated_handshake),
        cmocka_unit_test(test_reset_mid_handshake),
        cmocka_unit_test(test_handshake_timeout),
        cmocka_unit_test(test_close_without_close_notify),
        cmocka_unit_test(test_close_wakes_reader),
        cmocka_unit_test(test_close_during_handshake),
        cmocka_unit_test(test_idle_connection_frees_buffers),
        cmocka_unit_test(test_cancel_each_stage),
        cmocka_unit_test(test_scope_bounds_handshake),
        cmocka_unit_test(test_sendfile_and_half_close),
        cmocka_unit_test(test_no_common_version_and_wrapped_ctx),
        cmocka_unit_test(test_strerror_and_misuse),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
