/*
 * Tests of tide_ws_upgrade (include/tide/ws.h): WebSocket upgrades from a
 * handler of the HTTP server (src/http_server.c).  A raw client checks the
 * 101 and that a frame sent in the same write as the upgrade head is not
 * lost; requests that are no upgrade get 426 / 405 / 400 and the
 * connection stays keep-alive; a keep-alive request before the upgrade on
 * the same connection; tide_ws_connect against it; connection counting;
 * graceful server close with upgraded connections (closed with 1001),
 * also one upgraded after the close began; misuse, -EPERM outside a task
 * and -ENOMEM (an allocator that fails the Nth allocation of the upgrade).
 * Clients run in the
 * same loop over loopback; file descriptors are counted before and after.
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
#include "net_util.h"

/* ------------------------------------------------------------- server */

typedef struct ustate {
    int upgraded;       /* tide_ws_upgrade succeeded */
    int refused;        /* ... returned -EPROTO */
    int ended;          /* echo loops that ended */
    int cancelled;      /* ... because the server closed */
    int misuse_ok;      /* /misuse saw every expected error */
    int after_rc;       /* /after: upgrade after a response */
    int taken_rc;       /* /taken: upgrade after a takeover */
    size_t conns_seen;  /* tide_http_server_connections inside an echo loop */
    int slow_waiting;   /* /slowchat: its handler waits for closing */
    int closing;        /* the test is about to close the server */
    int flood_send_rc;  /* /flood: how sending to a peer that never reads ended */
    int64_t flood_close_ms; /* ... and how long tide_ws_close took (-1: not yet) */
    int nomem_at;           /* /nomem: the allocation of the upgrade that fails (from 1) */
    int nomem_rc;           /* ... what tide_ws_upgrade returned */
    int nomem_ws_null;      /* ... and *out was NULL */
    int eperm_rc;           /* /eperm: tide_ws_upgrade from a callback */
    int eperm_ws_null;
    tide_http_server *srv;
} ustate;

/* ------------------------------------------------- failing allocations */

/* tide's allocator (installed first thing in main): malloc's, except that
 * the g_fail_at-th allocation (from 1) made by the task g_fail_task fails;
 * g_calls counts that task's allocations. */
static tide_task *g_fail_task;
static int g_fail_at, g_calls;

static int fail_now(void)
{
    if (!g_fail_task || tide_current_task() != g_fail_task)
        return 0;
    return ++g_calls == g_fail_at;
}

static void *f_malloc(size_t n)
{
    return fail_now() ? NULL : malloc(n);
}

static void *f_realloc(void *p, size_t n)
{
    return fail_now() ? NULL : realloc(p, n);
}

static void *f_calloc(size_t n, size_t size)
{
    return fail_now() ? NULL : calloc(n, size);
}

static const tide_http_header CT = {"Content-Type", 12, "text/plain", 10};

/* Echoes messages until the connection ends; a cancellation (the server
 * closing) closes with 1001. */
static int echo(ustate *st, tide_ws *ws)
{
    tide_ws_msg m;
    int rc;

    st->conns_seen = tide_http_server_connections(st->srv);
    while ((rc = tide_ws_recv(ws, &m)) == 0)
        if (tide_ws_send(ws, m.opcode, m.data, m.len) < 0)
            break;
    st->ended++;
    if (rc == -ECANCELED) {
        st->cancelled++;
        tide_ws_close(ws, TIDE_WS_CLOSE_GOING_AWAY, "server closing");
    } else {
        tide_ws_close(ws, TIDE_WS_CLOSE_NORMAL, NULL);
    }
    return 0;
}

static tide_http_exchange *eperm_x;
static ustate *eperm_st;

static void eperm_cb(void *arg)
{
    tide_ws *ws = (tide_ws *)&eperm_x; /* must be reset to NULL */

    (void)arg;
    eperm_st->eperm_rc = tide_ws_upgrade(eperm_x, NULL, &ws);
    eperm_st->eperm_ws_null = ws == NULL;
}

static int handler(tide_http_exchange *x, void *arg)
{
    ustate *st = arg;
    const tide_http_request *r = tide_http_exchange_request(x);
    tide_ws_opts o;
    tide_ws *ws = (tide_ws *)&o; /* must be reset to NULL on errors */
    int rc;

#define IS(p) (r->path_len == strlen(p) && memcmp(r->path, p, r->path_len) == 0)
    if (IS("/chat") || IS("/slowchat")) {
        if (IS("/slowchat")) { /* upgrades once the server's close began */
            st->slow_waiting = 1;
            while (!st->closing)
                tide_sleep(5);
        }
        tide_ws_opts_init(&o);
        o.subprotocols = "echo";
        rc = tide_ws_upgrade(x, &o, &ws);
        if (rc == -EPROTO) {
            st->refused++;
            return ws == NULL ? 0 : -1;
        }
        if (rc < 0)
            return rc;
        st->upgraded++;
        return echo(st, ws);
    }
    if (IS("/flood")) { /* a peer that never reads: the close stays bounded */
        static char big[256 * 1024];
        tide_scope sc;
        int64_t t0;
        tide_ws_opts_init(&o);
        o.close_timeout_ms = 300;
        if (tide_ws_upgrade(x, &o, &ws) < 0)
            return -1;
        tide_timeout_begin(&sc, 300);
        do
            st->flood_send_rc = tide_ws_send(ws, TIDE_WS_OP_BINARY, big, sizeof big);
        while (st->flood_send_rc == 0);
        tide_timeout_end(&sc);
        t0 = tide_now();
        tide_ws_close(ws, TIDE_WS_CLOSE_NORMAL, NULL);
        st->flood_close_ms = tide_now() - t0;
        return 0;
    }
    if (IS("/after")) {
        tide_http_respond(x, 200, &CT, 1, "ok", 2);
        st->after_rc = tide_ws_upgrade(x, NULL, &ws);
        return ws == NULL ? 0 : -1;
    }
    if (IS("/taken")) {
        tide_stream *s = tide_http_takeover(x);
        st->taken_rc = tide_ws_upgrade(x, NULL, &ws);
        if (ws)
            st->taken_rc = 1;
        tide_stream_write(s, "bye", 3);
        tide_stream_close(s);
        return 0;
    }
    if (IS("/nomem")) { /* the st->nomem_at-th allocation of the upgrade fails */
        g_calls = 0;
        g_fail_at = st->nomem_at;
        g_fail_task = tide_current_task();
        rc = tide_ws_upgrade(x, NULL, &ws);
        g_fail_task = NULL;
        st->nomem_rc = rc;
        st->nomem_ws_null = ws == NULL;
        if (rc < 0)
            return rc;
        st->upgraded++;
        return echo(st, ws);
    }
    if (IS("/eperm")) { /* not in a task: a callback of the loop */
        st->eperm_rc = 1;
        eperm_x = x;
        eperm_st = st;
        if (tide_call_soon(tide_loop_current(), eperm_cb, NULL) < 0)
            return -1;
        while (st->eperm_rc == 1)
            tide_sleep(0);
        /* the exchange is untouched: an ordinary answer still works */
        return tide_http_respond(x, 200, &CT, 1, "fine", 4);
    }
    if (IS("/misuse")) {
        int ok = 1;
        o.ping_interval_ms = 0;
        tide_ws_opts_init(&o);
        o.close_timeout_ms = -1;
        ok &= tide_ws_upgrade(NULL, NULL, &ws) == -EINVAL && ws == NULL;
        ok &= tide_ws_upgrade(x, NULL, NULL) == -EINVAL;
        ok &= tide_ws_upgrade(x, &o, &ws) == -EINVAL && ws == NULL;
        st->misuse_ok = ok;
        /* the exchange is untouched: an ordinary answer still works */
        return tide_http_respond(x, 200, &CT, 1, "fine", 4);
    }
    return tide_http_respond(x, 200, &CT, 1, "hello", 5);
#undef IS
}

/* ------------------------------------------------------------- clients */

typedef struct resp {
    int status;
    char head[2048];
    char body[512];
} resp;

/* Reads one response head (and its Content-Length body) from s. */
static int read_resp(tide_stream *s, resp *out)
{
    tide_http_header h[32];
    tide_http_response pr;
    ssize_t n, k;

    memset(out, 0, sizeof *out);
    n = tide_stream_readuntil(s, "\r\n\r\n", 4, out->head, sizeof out->head - 1);
    if (n <= 0)
        return n == 0 ? -ECONNRESET : (int)n;
    out->head[n] = 0;
    tide_http_response_init(&pr, h, 32);
    k = tide_http_parse_response(out->head, (size_t)n, &pr);
    if (k != n)
        return -EBADMSG;
    out->status = pr.status;
    if (pr.status != 101 && pr.body == TIDE_HTTP_BODY_LENGTH) {
        if (pr.content_length >= sizeof out->body)
            return -EMSGSIZE;
        k = tide_stream_readexactly(s, out->body, (size_t)pr.content_length);
        if (k != (ssize_t)pr.content_length)
            return -EIO;
    }
    return 0;
}

static int send_str(tide_stream *s, const char *str)
{
    return tide_stream_write(s, str, strlen(str)) < 0 ? -1 : 0;
}

/* Builds a masked client frame into out: its length. */
static size_t client_frame(uint8_t *out, int opcode, const void *data, size_t len)
{
    static const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
    int n = tide_ws_frame_head(out, 1, opcode, len, key);
    memcpy(out + n, data, len);
    tide_ws_mask(out + n, len, key, 0);
    return (size_t)n + len;
}

/* Reads one unmasked server frame: its opcode, the payload in buf. */
static int read_frame(tide_stream *s, uint8_t *buf, size_t cap, size_t *len)
{
    uint8_t head[TIDE_WS_MAX_HEADER];
    tide_ws_frame f;
    size_t have = 0;
    ssize_t r;

    for (;;) {
        r = tide_stream_readexactly(s, head + have, 1);
        if (r != 1)
            return -EIO;
        have++;
        r = tide_ws_frame_parse(head, have, TIDE_WS_FROM_SERVER, &f, NULL);
        if (r > 0)
            break;
        if (r != -EAGAIN)
            return (int)r;
    }
    if (f.len > cap)
        return -EMSGSIZE;
    if (tide_stream_readexactly(s, buf, (size_t)f.len) != (ssize_t)f.len)
        return -EIO;
    *len = (size_t)f.len;
    return f.opcode;
}

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
#define UPGRADE(path, extra)                                                                    \
    "GET " path " HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"          \
    "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n" extra "\r\n"

static resp R;

/* ------------------------------------------------------- raw upgrades */

static int raw_main(void *arg)
{
    ustate st = {0};
    tide_http_server *srv;
    tide_stream *c;
    uint8_t buf[256 + sizeof UPGRADE("/chat", "")];
    size_t n, len;
    (void)arg;

    assert_int_equal(tide_http_serve(NULL, 0, handler, &st, NULL, &srv), 0);
    st.srv = srv;
    int port = tide_http_server_port(srv);

    /* A keep-alive request, refused upgrades, then the upgrade, all on one
     * connection; the upgrade head and a first frame go in one write. */
    assert_int_equal(tide_open_connection("127.0.0.1", port, &c), 0);
    send_str(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_resp(c, &R), 0);
    assert_int_equal(R.status, 200);
    assert_string_equal(R.body, "hello");

    /* No Upgrade at all: 426 naming the protocol; keep-alive holds. */
    send_str(c, "GET /chat HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(read_resp(c, &R), 0);
    assert_int_equal(R.status, 426);
    assert_non_null(strstr(R.head, "\r\nUpgrade: websocket\r\n"));
    assert_non_null(strstr(R.head, "\r\nSec-WebSocket-Version: 13\r\n"));
    assert_null(strstr(R.head, "Connection: close"));
    /* Another version: 426 */
    send_str(c, "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 8\r\n\r\n");
    assert_int_equal(read_resp(c, &R), 0);
    assert_int_equal(R.status, 426);
    /* Another method: 405 with Allow */
    send_str(c, "POST /chat HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(read_resp(c, &R), 0);
    assert_int_equal(R.status, 405);
    assert_non_null(strstr(R.head, "\r\nAllow: GET\r\n"));
    /* A bad key: 400 */
    send_str(c, "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n");
    assert_int_equal(read_resp(c, &R), 0);
    assert_int_equal(R.status, 400);
    /* An upgrade with a body: 400 (the body is drained, keep-alive holds) */
    send_str(c, UPGRADE("/chat", "Content-Length: 3\r\n") "abc");
    assert_int_equal(read_resp(c, &R), 0);
    assert_int_equal(R.status, 400);
    assert_null(strstr(R.head, "Connection: close"));
    assert_int_equal(st.refused, 5);

    /* The upgrade, with a masked "hi" and a ping right behind the head. */
    n = strlen(UPGRADE("/chat", "Sec-WebSocket-Protocol: x, echo\r\n"));
    memcpy(buf, UPGRADE("/chat", "Sec-WebSocket-Protocol: x, echo\r\n"), n);
    n += client_frame(buf + n, TIDE_WS_OP_TEXT, "hi", 2);
    n += client_frame(buf + n, TIDE_WS_OP_PING, "p", 1);
    assert_int_equal(tide_stream_write(c, buf, n), (ssize_t)n);
    assert_int_equal(read_resp(c, &R), 0);
    assert_int_equal(R.status, 101);
    assert_non_null(strstr(R.head, "\r\nSec-WebSocket-Accept: " ACCEPT "\r\n"));
    assert_non_null(strstr(R.head, "\r\nSec-WebSocket-Protocol: echo\r\n"));
    assert_int_equal(read_frame(c, buf, sizeof buf, &len), TIDE_WS_OP_TEXT);
    assert_int_equal(len, 2);
    assert_memory_equal(buf, "hi", 2);
    assert_int_equal(read_frame(c, buf, sizeof buf, &len), TIDE_WS_OP_PONG);
    assert_int_equal(len, 1);
    assert_int_equal(buf[0], 'p');
    assert_int_equal(st.upgraded, 1);
    /* The handler's task still runs: the connection is counted. */
    assert_int_equal(st.conns_seen, 1);
    assert_int_equal(tide_http_server_connections(srv), 1);
    /* Close handshake from the client: 1000 echoed, then EOF. */
    {
        uint8_t cl[2] = {0x03, 0xe8};
        n = client_frame(buf, TIDE_WS_OP_CLOSE, cl, 2);
        assert_int_equal(tide_stream_write(c, buf, n), (ssize_t)n);
    }
    assert_int_equal(read_frame(c, buf, sizeof buf, &len), TIDE_WS_OP_CLOSE);
    assert_int_equal(len, 2);
    assert_int_equal(buf[0] << 8 | buf[1], 1000);
    assert_int_equal(tide_stream_read(c, buf, 1), 0);
    tide_stream_close(c);
    assert_int_equal(st.ended, 1);
    for (int i = 0; i < 100 && tide_http_server_connections(srv); i++)
        tide_sleep(5);
    assert_int_equal(tide_http_server_connections(srv), 0);

    /* A peer that never reads: tide_ws_close (which closes the stream) is
     * bounded by the close timeout, not the server's 30 s write timeout. */
    assert_int_equal(tide_open_connection("127.0.0.1", port, &c), 0);
    {
        int small = 4096;
        setsockopt(tide_stream_fd(c), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    }
    st.flood_close_ms = -1;
    send_str(c, UPGRADE("/flood", ""));
    assert_int_equal(read_resp(c, &R), 0);
    assert_int_equal(R.status, 101);
    for (int i = 0; i < 300 && st.flood_close_ms < 0; i++)
        tide_sleep(10);
    assert_int_equal(st.flood_send_rc, -ETIMEDOUT);
    assert_true(st.flood_close_ms >= 0 && st.flood_close_ms < 1500);
    tide_stream_close(c);

    /* Misuse, upgrade after a response, after a takeover. */
    assert_int_equal(tide_open_connection("127.0.0.1", port, &c), 0);
    send_str(c, UPGRADE("/misuse", ""));
    assert_int_equal(read_resp(c, &R), 0);
    assert_int_equal(R.status, 200);
    assert_string_equal(R.body, "fine");
    assert_true(st.misuse_ok);
    send_str(c, UPGRADE("/after", ""));
    assert_int_equal(read_resp(c, &R), 0);
    assert_int_equal(R.status, 200);
    assert_int_equal(st.after_rc, -EALREADY);
    send_str(c, UPGRADE("/taken", ""));
    assert_int_equal(tide_stream_readexactly(c, buf, 3), 3);
    assert_memory_equal(buf, "bye", 3);
    assert_int_equal(st.taken_rc, -EBADF);
    tide_stream_close(c);

    /* Not in a task: -EPERM, *out NULL, the exchange still answers. */
    assert_int_equal(tide_open_connection("127.0.0.1", port, &c), 0);
    send_str(c, UPGRADE("/eperm", ""));
    assert_int_equal(read_resp(c, &R), 0);
    assert_int_equal(R.status, 200);
    assert_string_equal(R.body, "fine");
    assert_int_equal(st.eperm_rc, -EPERM);
    assert_true(st.eperm_ws_null);
    tide_stream_close(c);

    /* Each allocation of the upgrade failing in turn (with a frame right
     * behind the head, so the read-ahead is put back too): -ENOMEM, *out
     * NULL, never a 101, nothing leaked (the fd count, and ASan's leak
     * check); then one that succeeds and echoes the frame. */
    int ups = st.upgraded;
    for (st.nomem_at = 1;; st.nomem_at++) {
        assert_true(st.nomem_at < 50);
        assert_int_equal(tide_open_connection("127.0.0.1", port, &c), 0);
        n = strlen(UPGRADE("/nomem", ""));
        memcpy(buf, UPGRADE("/nomem", ""), n);
        n += client_frame(buf + n, TIDE_WS_OP_TEXT, "hi", 2);
        assert_int_equal(tide_stream_write(c, buf, n), (ssize_t)n);
        int rrc = read_resp(c, &R);
        if (st.nomem_rc == 0) {
            assert_int_equal(rrc, 0);
            assert_int_equal(R.status, 101);
            assert_int_equal(read_frame(c, buf, sizeof buf, &len), TIDE_WS_OP_TEXT);
            assert_memory_equal(buf, "hi", 2);
            tide_stream_close(c);
            break;
        }
        assert_int_equal(st.nomem_rc, -ENOMEM);
        assert_true(st.nomem_ws_null);
        assert_true(rrc < 0 || R.status >= 400); /* never a 101 */
        tide_stream_close(c);
    }
    assert_true(st.nomem_at > 1); /* at least one allocation failed */
    assert_int_equal(st.upgraded, ups + 1);
    for (int i = 0; i < 100 && tide_http_server_connections(srv); i++)
        tide_sleep(5);

    assert_int_equal(tide_http_server_close(srv, TIDE_SERVER_WAIT), 0);
    return 0;
}

static void test_upgrade_raw(void **state)
{
    int fds = tt_count_fds();
    (void)state;
    TT_RUN(raw_main, NULL);
    assert_int_equal(tt_count_fds(), fds);
}

/* -------------------------------------- tide's client, graceful close */

typedef struct client {
    int port;
    const char *path;
    int connect_rc;
    int echoed;     /* messages echoed correctly */
    int recv_rc;    /* how the reading ended */
    int close_code; /* the server's close code */
    tide_event ready;
} client;

static int client_main(void *arg)
{
    client *cl = arg;
    char url[64];
    tide_ws_opts o;
    tide_ws *ws;
    tide_ws_msg m;

    snprintf(url, sizeof url, "ws://127.0.0.1:%d%s", cl->port, cl->path);
    tide_ws_opts_init(&o);
    o.subprotocols = "echo";
    cl->connect_rc = tide_ws_connect(url, &o, &ws);
    if (cl->connect_rc < 0) {
        tide_event_set(&cl->ready);
        return 0;
    }
    for (int i = 0; i < 20; i++) {
        char msg[32];
        int n = snprintf(msg, sizeof msg, "message %d", i);
        if (tide_ws_send(ws, TIDE_WS_OP_TEXT, msg, (size_t)n) < 0 || tide_ws_recv(ws, &m) < 0)
            break;
        if (m.opcode == TIDE_WS_OP_TEXT && m.len == (size_t)n && memcmp(m.data, msg, m.len) == 0)
            cl->echoed++;
    }
    tide_event_set(&cl->ready);
    cl->recv_rc = tide_ws_recv(ws, &m); /* until the server closes */
    cl->close_code = tide_ws_close_code(ws);
    tide_ws_close(ws, 0, NULL);
    return 0;
}

/* A raw client of /slowchat: its upgrade is answered after the server's
 * close began; it reads the 101 and the close frame, and answers it. */
typedef struct late {
    int port;
    int status;
    int close_code;
    int eof;
} late;

static int late_main(void *arg)
{
    late *l = arg;
    tide_stream *c;
    uint8_t buf[64];
    size_t len;
    int op;

    if (tide_open_connection("127.0.0.1", l->port, &c) < 0)
        return -1;
    send_str(c, UPGRADE("/slowchat", ""));
    if (read_resp(c, &R) == 0)
        l->status = R.status;
    op = read_frame(c, buf, sizeof buf, &len);
    if (op == TIDE_WS_OP_CLOSE && len >= 2) {
        l->close_code = buf[0] << 8 | buf[1];
        len = client_frame(buf, TIDE_WS_OP_CLOSE, buf, 2);
        tide_stream_write(c, buf, len);
        l->eof = tide_stream_read(c, buf, 1) == 0;
    }
    tide_stream_close(c);
    return 0;
}

static int graceful_main(void *arg)
{
    ustate st = {0};
    tide_http_server *srv;
    client cl[3];
    tide_task *t[3], *lt;
    late l = {0};
    (void)arg;

    assert_int_equal(tide_http_serve(NULL, 0, handler, &st, NULL, &srv), 0);
    st.srv = srv;
    int port = tide_http_server_port(srv);
    for (int i = 0; i < 3; i++) {
        memset(&cl[i], 0, sizeof cl[i]);
        cl[i].port = port;
        cl[i].path = "/chat";
        tide_event_init(&cl[i].ready);
        assert_int_equal(tide_create_task(&t[i], client_main, &cl[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tide_event_wait(&cl[i].ready), 0);
        assert_int_equal(cl[i].connect_rc, 0);
        assert_int_equal(cl[i].echoed, 20);
    }
    assert_int_equal(tide_http_server_connections(srv), 3);
    /* A handler that upgrades only after the close began. */
    l.port = port;
    assert_int_equal(tide_create_task(&lt, late_main, &l), 0);
    for (int i = 0; i < 400 && !st.slow_waiting; i++)
        tide_sleep(5);
    assert_true(st.slow_waiting);

    st.closing = 1; /* seen by /slowchat only after the close began */
    assert_int_equal(tide_http_server_close(srv, TIDE_SERVER_WAIT), 0);
    assert_int_equal(st.upgraded, 4);
    assert_int_equal(st.ended, 4);
    assert_int_equal(st.cancelled, 4);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tide_await(t[i]), 0);
        assert_int_equal(cl[i].recv_rc, -EPIPE);
        assert_int_equal(cl[i].close_code, TIDE_WS_CLOSE_GOING_AWAY);
    }
    /* The late one got its 101, then a 1001 close. */
    assert_int_equal(tide_await(lt), 0);
    assert_int_equal(l.status, 101);
    assert_int_equal(l.close_code, TIDE_WS_CLOSE_GOING_AWAY);
    assert_true(l.eof);
    return 0;
}

static void test_upgrade_graceful_close(void **state)
{
    int fds = tt_count_fds();
    (void)state;
    TT_RUN(graceful_main, NULL);
    assert_int_equal(tt_count_fds(), fds);
}

/* A cancelling close ends upgraded connections too; max_connections
 * counts an upgraded connection until its handler returns. */
static int limit_main(void *arg)
{
    ustate st = {0};
    tide_http_server_opts o;
    tide_http_server *srv;
    client cl;
    tide_task *t;
    tide_stream *c;
    (void)arg;

    tide_http_server_opts_init(&o);
    o.server.max_connections = 1;
    assert_int_equal(tide_http_serve(NULL, 0, handler, &st, &o, &srv), 0);
    st.srv = srv;
    memset(&cl, 0, sizeof cl);
    cl.port = tide_http_server_port(srv);
    cl.path = "/chat";
    tide_event_init(&cl.ready);
    assert_int_equal(tide_create_task(&t, client_main, &cl), 0);
    assert_int_equal(tide_event_wait(&cl.ready), 0);
    assert_int_equal(cl.echoed, 20);
    /* The slot is taken: a second connection is not served meanwhile. */
    assert_int_equal(tide_open_connection("127.0.0.1", cl.port, &c), 0);
    send_str(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    {
        tide_scope sc;
        char b;
        tide_timeout_begin(&sc, 100);
        assert_true(tide_stream_read(c, &b, 1) < 0);
        assert_int_equal(tide_timeout_end(&sc), -ETIMEDOUT);
    }
    assert_int_equal(tide_http_server_close(srv, TIDE_SERVER_CANCEL), 0);
    assert_int_equal(tide_await(t), 0);
    assert_int_equal(cl.recv_rc, -EPIPE);
    assert_int_equal(cl.close_code, TIDE_WS_CLOSE_GOING_AWAY);
    assert_int_equal(st.cancelled, 1);
    tide_stream_close(c);
    return 0;
}

static void test_upgrade_limit_cancel(void **state)
{
    int fds = tt_count_fds();
    (void)state;
    TT_RUN(limit_main, NULL);
    assert_int_equal(tt_count_fds(), fds);
}

int main(void)
{
    if (tide_replace_allocator(f_malloc, f_realloc, f_calloc, free) < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upgrade_raw),
        cmocka_unit_test(test_upgrade_graceful_close),
        cmocka_unit_test(test_upgrade_limit_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
