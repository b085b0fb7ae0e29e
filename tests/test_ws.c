/*
 * Tests of WebSocket (include/tide/ws.h): the codec against RFC 6455's
 * examples, SHA-1/base64 accept keys, UTF-8 validation cut anywhere, close
 * payloads, the handshake checks; then connections, with tide as the
 * server against a raw peer written here (every protocol violation gets
 * its close code, fragments with pings between them, oversized messages,
 * a peer vanishing, the close handshake both ways, keep-alive timeouts),
 * tide as a client against a raw server (masking, refusing a masked frame
 * or a bad accept key), and tide against itself over TCP (concurrent send
 * and read, subprotocols).  File descriptors are counted before and after;
 * ASan's leak checker covers memory.
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
#include <sys/socket.h>
#include <unistd.h>

#include "tide.h"
#include "util.h"
#include "ws_util.h"

/* ---------------------------------------------------------------- codec */

static void test_rfc_vectors(void **state)
{
    (void)state;
    tide_ws_frame f;
    const char *why;
    /* 5.7: a single-frame unmasked text message "Hello". */
    static const uint8_t hello[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};
    assert_int_equal(tide_ws_frame_parse(hello, sizeof hello, TIDE_WS_FROM_SERVER, &f, &why), 2);
    assert_int_equal(f.fin, 1);
    assert_int_equal(f.opcode, TIDE_WS_OP_TEXT);
    assert_int_equal(f.len, 5);
    assert_int_equal(f.masked, 0);
    /* The same from a server is refused from a client. */
    assert_int_equal(tide_ws_frame_parse(hello, sizeof hello, TIDE_WS_FROM_CLIENT, &f, &why),
                     -EPROTO);
    assert_non_null(why);
    /* 5.7: a masked "Hello". */
    uint8_t masked[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    assert_int_equal(tide_ws_frame_parse(masked, sizeof masked, TIDE_WS_FROM_CLIENT, &f, NULL), 6);
    assert_int_equal(f.masked, 1);
    tide_ws_mask(masked + 6, 5, f.mask, 0);
    assert_memory_equal(masked + 6, "Hello", 5);
    assert_int_equal(tide_ws_frame_parse(masked, sizeof masked, TIDE_WS_FROM_SERVER, &f, NULL),
                     -EPROTO);
    /* 5.7: fragmented "Hel" + "lo". */
    static const uint8_t frag1[] = {0x01, 0x03, 'H', 'e', 'l'}, frag2[] = {0x80, 0x02, 'l', 'o'};
    assert_int_equal(tide_ws_frame_parse(frag1, 5, 0, &f, NULL), 2);
    assert_int_equal(f.fin, 0);
    assert_int_equal(f.opcode, TIDE_WS_OP_TEXT);
    assert_int_equal(tide_ws_frame_parse(frag2, 4, 0, &f, NULL), 2);
    assert_int_equal(f.fin, 1);
    assert_int_equal(f.opcode, TIDE_WS_OP_CONT);
    /* 5.7: 256 bytes and 64 KiB binary, unmasked. */
    static const uint8_t b256[] = {0x82, 0x7e, 0x01, 0x00};
    assert_int_equal(tide_ws_frame_parse(b256, 4, 0, &f, NULL), 4);
    assert_int_equal(f.len, 256);
    static const uint8_t b64k[] = {0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0};
    assert_int_equal(tide_ws_frame_parse(b64k, 10, 0, &f, NULL), 10);
    assert_int_equal(f.len, 65536);
    /* Every prefix of a head is -EAGAIN. */
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(tide_ws_frame_parse(b64k, i, 0, &f, NULL), -EAGAIN);
    /* Heads we write parse back the same. */
    uint8_t head[TIDE_WS_MAX_HEADER];
    static const uint8_t key[4] = {1, 2, 3, 4};
    uint64_t lens[] = {0, 125, 126, 65535, 65536, (uint64_t)1 << 40};
    for (size_t i = 0; i < TT_ARRAY_LEN(lens); i++) {
        int n = tide_ws_frame_head(head, 1, TIDE_WS_OP_BINARY, lens[i], key);
        assert_true(n > 0);
        assert_int_equal(tide_ws_frame_parse(head, (size_t)n, TIDE_WS_FROM_CLIENT, &f, NULL), n);
        assert_int_equal(f.len, lens[i]);
        assert_memory_equal(f.mask, key, 4);
    }
    assert_int_equal(tide_ws_frame_head(head, 1, TIDE_WS_OP_TEXT, 5, NULL), 2);
    assert_memory_equal(head, hello, 2);
    /* Bad heads. */
    assert_int_equal(tide_ws_frame_head(head, 0, TIDE_WS_OP_PING, 0, NULL), -EINVAL);
    assert_int_equal(tide_ws_frame_head(head, 1, TIDE_WS_OP_PING, 126, NULL), -EINVAL);
    assert_int_equal(tide_ws_frame_head(NULL, 1, 1, 0, NULL), -EINVAL);
    assert_int_equal(tide_ws_frame_head(head, 1, 16, 0, NULL), -EINVAL);
    static const uint8_t bad[][10] = {
        {0xc1, 0x00},                      /* RSV1 */
        {0x83, 0x00},                      /* opcode 3 */
        {0x8b, 0x00},                      /* opcode 11 */
        {0x09, 0x00},                      /* fragmented ping */
        {0x89, 0x7e, 0x00, 0x7e},          /* ping of 126 bytes */
        {0x82, 0x7e, 0x00, 0x05},          /* 5 in the 16-bit form */
        {0x82, 0x7f, 0, 0, 0, 0, 0, 0, 1, 0}, /* 256 in the 64-bit form */
        {0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0}, /* top bit */
    };
    for (size_t i = 0; i < TT_ARRAY_LEN(bad); i++)
        assert_int_equal(tide_ws_frame_parse(bad[i], 10, 0, &f, &why), -EPROTO);
    assert_int_equal(tide_ws_frame_parse(NULL, 2, 0, &f, NULL), -EINVAL);
    assert_int_equal(tide_ws_frame_parse(hello, 2, 0, NULL, NULL), -EINVAL);
}

static void test_mask_phases(void **state)
{
    (void)state;
    uint8_t data[300], ref[300];
    static const uint8_t key[4] = {0xa1, 0xb2, 0xc3, 0xd4};
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = ref[i] = (uint8_t)(i * 7);
    /* Any split and alignment gives the byte-at-a-time result. */
    for (size_t cut = 0; cut < 40; cut++) {
        memcpy(data, ref, sizeof data);
        tide_ws_mask(data + 1, cut, key, 0);
        tide_ws_mask(data + 1 + cut, sizeof data - 1 - cut, key, cut);
        for (size_t i = 1; i < sizeof data; i++)
            assert_int_equal(data[i], ref[i] ^ key[(i - 1) & 3]);
    }
    tide_ws_mask(NULL, 0, key, 0);
}

static void test_accept_key(void **state)
{
    (void)state;
    char out[29];
    const char *k = "dGhlIHNhbXBsZSBub25jZQ==";
    assert_int_equal(tide_ws_accept_key(k, strlen(k), out), 28);
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_int_equal(tide_ws_accept_key(NULL, 0, out), -EINVAL);
}

static int utf8_ok(const char *s, size_t n)
{
    uint32_t st = 0;
    return tide_ws_utf8_feed(&st, s, n) == 0 && tide_ws_utf8_complete(st);
}

static void test_utf8(void **state)
{
    (void)state;
    const char *good[] = {"", "hello world, plain ASCII long enough for words",
                          "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", "\xef\xbf\xbf",
                          "\xf4\x8f\xbf\xbf", "\xed\x9f\xbf", "\xf0\x90\x80\x80"};
    for (size_t i = 0; i < TT_ARRAY_LEN(good); i++) {
        size_t n = strlen(good[i]);
        assert_true(utf8_ok(good[i], n));
        /* Cut at every point: the same verdict. */
        for (size_t c = 0; c <= n; c++) {
            uint32_t st = 0;
            assert_int_equal(tide_ws_utf8_feed(&st, good[i], c), 0);
            assert_int_equal(tide_ws_utf8_feed(&st, good[i] + c, n - c), 0);
            assert_true(tide_ws_utf8_complete(st));
        }
    }
    const char *bad[] = {"\xc0\x80", "\xc1\xbf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf5",
                         "\x80", "abc\xff", "\xe0\x80\xaf", "\xf0\x8f\xbf\xbf",
                         "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64"};
    for (size_t i = 0; i < TT_ARRAY_LEN(bad); i++)
        assert_false(utf8_ok(bad[i], strlen(bad[i])));
    /* Fail fast: the impossible byte is refused as it comes. */
    uint32_t st = 0;
    assert_int_equal(tide_ws_utf8_feed(&st, "\xe0", 1), 0);
    assert_false(tide_ws_utf8_complete(st));
    assert_int_equal(tide_ws_utf8_feed(&st, "\x80", 1), -EILSEQ);
    assert_int_equal(tide_ws_utf8_feed(&st, "a", 1), -EILSEQ); /* sticks */
    /* Truncated: valid so far, not complete. */
    st = 0;
    assert_int_equal(tide_ws_utf8_feed(&st, "\xf0\x90\x80", 3), 0);
    assert_false(tide_ws_utf8_complete(st));
    assert_int_equal(tide_ws_utf8_feed(NULL, "a", 1), -EINVAL);
}

static void test_close_parse(void **state)
{
    (void)state;
    assert_int_equal(tide_ws_close_parse("", 0), 1005);
    assert_int_equal(tide_ws_close_parse("\x03\xe8", 2), 1000);
    assert_int_equal(tide_ws_close_parse("\x03\xe8ok", 4), 1000);
    assert_int_equal(tide_ws_close_parse("\x0b\xb8", 2), 3000);
    assert_int_equal(tide_ws_close_parse("\x03", 1), -EPROTO);
    assert_int_equal(tide_ws_close_parse("\x03\xed", 2), -EPROTO); /* 1005 */
    assert_int_equal(tide_ws_close_parse("\x03\xee", 2), -EPROTO); /* 1006 */
    assert_int_equal(tide_ws_close_parse("\x03\xec", 2), -EPROTO); /* 1004 */
    assert_int_equal(tide_ws_close_parse("\x03\xf7", 2), -EPROTO); /* 1015 */
    assert_int_equal(tide_ws_close_parse("\x13\x88", 2), -EPROTO); /* 5000 */
    assert_int_equal(tide_ws_close_parse("\x03\xe8\xff", 3), -EILSEQ);
    assert_int_equal(tide_ws_close_parse(NULL, 2), -EINVAL);
}

#define GOOD_REQ                                                                                   \
    "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"                      \
    "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"           \
    "Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n"

static tide_http_header g_hdrs[32];

static void parse_req(const char *raw, tide_http_request *req)
{
    tide_http_request_init(req, g_hdrs, 32);
    assert_int_equal(tide_http_parse_request(raw, strlen(raw), req), (ssize_t)strlen(raw));
}

static void test_check_request(void **state)
{
    (void)state;
    tide_http_request req;
    int status;
    const char *why;
    parse_req(GOOD_REQ, &req);
    assert_int_equal(tide_ws_check_request(&req, &status, &why), 0);
    struct {
        const char *raw;
        int status;
    } bad[] = {
        {"POST /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
         "Content-Length: 0\r\n\r\n",
         405},
        {"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Version: 13\r\n\r\n",
         400},
        {"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n",
         400},
        {"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
         426},
        {"GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         426},
        {"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         400},
        {"GET /chat HTTP/1.0\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         400},
    };
    for (size_t i = 0; i < TT_ARRAY_LEN(bad); i++) {
        parse_req(bad[i].raw, &req);
        assert_int_equal(tide_ws_check_request(&req, &status, &why), -EPROTO);
        assert_int_equal(status, bad[i].status);
        assert_non_null(why);
    }
    assert_int_equal(tide_ws_check_request(NULL, &status, &why), -EINVAL);
}

/* ------------------------------------------------- a raw peer over a pair */

typedef struct pair {
    tide_stream *srv; /* tide's side */
    tide_stream *peer;
    tide_ws *ws;
} pair;

/* Writes a frame as a client would (masked unless unmasked is set). */
static void peer_frame(tide_stream *s, int first_byte, const void *data, size_t len, int unmasked)
{
    uint8_t buf[70000 + 14];
    assert_true(len <= 70000);
    static const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
    int hl = tide_ws_frame_head(buf, 1, 0, len, unmasked ? NULL : key);
    assert_true(hl > 0);
    buf[0] = (uint8_t)first_byte;
    memcpy(buf + hl, data, len);
    if (!unmasked)
        tide_ws_mask(buf + hl, len, key, 0);
    assert_int_equal(tide_stream_write(s, buf, (size_t)hl + len), (ssize_t)(hl + len));
}

/* Reads one frame sent by tide (unmasked when from a server). */
static int peer_read(tide_stream *s, uint8_t *out, size_t cap, size_t *len, int *fin)
{
    uint8_t h[14];
    if (tide_stream_readexactly(s, h, 2) != 2)
        return -1;
    tide_ws_frame f;
    size_t need = 2;
    if ((h[1] & 0x7f) == 126)
        need += 2;
    if ((h[1] & 0x7f) == 127)
        need += 8;
    if (h[1] & 0x80)
        need += 4;
    if (need > 2)
        assert_int_equal(tide_stream_readexactly(s, h + 2, need - 2), (ssize_t)(need - 2));
    assert_int_equal(tide_ws_frame_parse(h, need, 0, &f, NULL), (ssize_t)need);
    assert_true(f.len <= cap);
    if (f.len)
        assert_int_equal(tide_stream_readexactly(s, out, (size_t)f.len), (ssize_t)f.len);
    if (f.masked)
        tide_ws_mask(out, (size_t)f.len, f.mask, 0);
    *len = (size_t)f.len;
    if (fin)
        *fin = f.fin;
    return f.opcode;
}

/* Reads frames until a close frame; returns its code (1005: none). */
static int peer_read_close(tide_stream *s)
{
    uint8_t buf[70000];
    size_t len;
    for (;;) {
        int op = peer_read(s, buf, sizeof buf, &len, NULL);
        if (op < 0)
            return -1;
        if (op == TIDE_WS_OP_CLOSE)
            return len >= 2 ? buf[0] << 8 | buf[1] : 1005;
    }
}

static void pair_open(pair *p, const tide_ws_opts *o)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(tide_stream_open(&p->srv, sv[0], NULL), 0);
    assert_int_equal(tide_stream_open(&p->peer, sv[1], NULL), 0);
    tide_http_request req;
    parse_req(GOOD_REQ, &req);
    assert_int_equal(tide_ws_accept(p->srv, &req, o, &p->ws), 0);
    char head[1024];
    ssize_t n = tide_stream_readuntil(p->peer, "\r\n\r\n", 4, head, sizeof head - 1);
    assert_true(n > 0);
    head[n] = 0;
    assert_non_null(strstr(head, "HTTP/1.1 101 "));
    assert_non_null(strstr(head, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
}

static void pair_close(pair *p)
{
    if (p->ws)
        tide_ws_close(p->ws, 0, NULL);
    tide_stream_close(p->peer);
    tide_stream_close(p->srv);
}

static int echo_main(void *arg)
{
    (void)arg;
    pair p;
    tide_ws_opts o;
    tide_ws_opts_init(&o);
    o.subprotocols = "superchat";
    pair_open(&p, &o);
    assert_string_equal(tide_ws_subprotocol(p.ws), "superchat");
    tide_ws_msg m;
    /* One masked text frame. */
    peer_frame(p.peer, 0x81, "Hello", 5, 0);
    assert_int_equal(tide_ws_recv(p.ws, &m), 0);
    assert_int_equal(m.opcode, TIDE_WS_OP_TEXT);
    assert_int_equal(m.len, 5);
    assert_string_equal((const char *)m.data, "Hello");
    assert_int_equal(tide_ws_send(p.ws, TIDE_WS_OP_TEXT, m.data, m.len), 0);
    uint8_t buf[70000];
    size_t len;
    int fin;
    assert_int_equal(peer_read(p.peer, buf, sizeof buf, &len, &fin), TIDE_WS_OP_TEXT);
    assert_int_equal(len, 5);
    assert_memory_equal(buf, "Hello", 5);
    /* Fragments with a ping between them: the pong comes first, then the
     * joined message. */
    peer_frame(p.peer, 0x01, "Hel", 3, 0);
    peer_frame(p.peer, 0x89, "p1", 2, 0);
    peer_frame(p.peer, 0x00, "", 0, 0);
    peer_frame(p.peer, 0x8a, "unsolicited", 11, 0);
    peer_frame(p.peer, 0x80, "lo", 2, 0);
    assert_int_equal(tide_ws_recv(p.ws, &m), 0);
    assert_int_equal(m.len, 5);
    assert_memory_equal(m.data, "Hello", 5);
    assert_int_equal(tide_ws_pongs(p.ws), 1);
    assert_int_equal(peer_read(p.peer, buf, sizeof buf, &len, NULL), TIDE_WS_OP_PONG);
    assert_int_equal(len, 2);
    assert_memory_equal(buf, "p1", 2);
    /* A 70000-byte binary message (64-bit length form), both ways. */
    static uint8_t big[70000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 31);
    peer_frame(p.peer, 0x82, big, sizeof big, 0);
    assert_int_equal(tide_ws_recv(p.ws, &m), 0);
    assert_int_equal(m.opcode, TIDE_WS_OP_BINARY);
    assert_int_equal(m.len, sizeof big);
    assert_memory_equal(m.data, big, sizeof big);
    assert_int_equal(tide_ws_send(p.ws, TIDE_WS_OP_BINARY, big, sizeof big), 0);
    assert_int_equal(peer_read(p.peer, buf, sizeof buf, &len, NULL), TIDE_WS_OP_BINARY);
    assert_int_equal(len, sizeof big);
    assert_memory_equal(buf, big, sizeof big);
    /* Fragments sent by tide. */
    struct iovec parts[3] = {{(void *)"ab", 2}, {(void *)"", 0}, {(void *)"c", 1}};
    assert_int_equal(tide_ws_send_fragments(p.ws, TIDE_WS_OP_TEXT, parts, 3), 0);
    assert_int_equal(peer_read(p.peer, buf, sizeof buf, &len, &fin), TIDE_WS_OP_TEXT);
    assert_int_equal(fin, 0);
    assert_int_equal(peer_read(p.peer, buf, sizeof buf, &len, &fin), TIDE_WS_OP_CONT);
    assert_int_equal(fin, 0);
    assert_int_equal(peer_read(p.peer, buf, sizeof buf, &len, &fin), TIDE_WS_OP_CONT);
    assert_int_equal(fin, 1);
    assert_int_equal(len, 1);
    /* A ping from tide. */
    assert_int_equal(tide_ws_ping(p.ws, "x", 1), 0);
    assert_int_equal(peer_read(p.peer, buf, sizeof buf, &len, NULL), TIDE_WS_OP_PING);
    /* The peer closes: echoed, -EPIPE, code and reason kept. */
    peer_frame(p.peer, 0x88, "\x03\xe8" "bye", 5, 0);
    assert_int_equal(tide_ws_recv(p.ws, &m), -EPIPE);
    assert_int_equal(tide_ws_close_code(p.ws), 1000);
    assert_string_equal(tide_ws_close_reason(p.ws), "bye");
    assert_int_equal(peer_read_close(p.peer), 1000);
    assert_int_equal(tide_ws_recv(p.ws, &m), -EPIPE);
    assert_int_equal(tide_ws_send(p.ws, TIDE_WS_OP_TEXT, "x", 1), -EPIPE);
    assert_int_equal(tide_ws_close(p.ws, 1000, NULL), 0);
    p.ws = NULL;
    pair_close(&p);
    return 0;
}

static void test_server_echo(void **state)
{
    (void)state;
    int before = tt_count_fds();
    assert_int_equal(tide_run(echo_main, NULL), 0);
    assert_int_equal(tt_count_fds(), before);
}

/* Each violation: the bytes a peer sends, the error recv returns and the
 * close code the peer gets. */
typedef struct violation {
    const char *name;
    int frames[3];          /* first bytes */
    const char *payload[3]; /* NULL ends the list */
    size_t plen[3];
    int unmasked;
    size_t max_message;
    int err, code;
} violation;

static const violation violations[] = {
    {"unmasked", {0x81}, {"hi"}, {2}, 1, 0, -EPROTO, 1002},
    {"rsv1", {0xc1}, {"hi"}, {2}, 0, 0, -EPROTO, 1002},
    {"opcode 3", {0x83}, {"hi"}, {2}, 0, 0, -EPROTO, 1002},
    {"continuation first", {0x80}, {"hi"}, {2}, 0, 0, -EPROTO, 1002},
    {"text inside a message", {0x01, 0x81}, {"a", "b"}, {1, 1}, 0, 0, -EPROTO, 1002},
    {"fragmented ping", {0x09}, {"a"}, {1}, 0, 0, -EPROTO, 1002},
    {"invalid utf-8", {0x81}, {"\xc0\xaf"}, {2}, 0, 0, -EILSEQ, 1007},
    {"utf-8 cut at the end", {0x81}, {"a\xe2\x82"}, {3}, 0, 0, -EILSEQ, 1007},
    /* Fails on the second fragment, before the message ends. */
    {"utf-8 across fragments", {0x01, 0x00}, {"a\xe0", "\x80"}, {2, 1}, 0, 0, -EILSEQ, 1007},
    {"too big", {0x82}, {"0123456789a"}, {11}, 0, 10, -EMSGSIZE, 1009},
    {"too big in fragments", {0x02, 0x00}, {"012345", "6789a"}, {6, 5}, 0, 10, -EMSGSIZE, 1009},
    {"close code 1005", {0x88}, {"\x03\xed"}, {2}, 0, 0, -EPROTO, 1002},
    {"close of 1 byte", {0x88}, {"\x03"}, {1}, 0, 0, -EPROTO, 1002},
    {"close reason not utf-8", {0x88}, {"\x03\xe8\xff"}, {3}, 0, 0, -EILSEQ, 1007},
};

static int violation_main(void *arg)
{
    const violation *v = (const violation *)arg;
    if (getenv("WS_DEBUG"))
        fprintf(stderr, "violation: %s\n", v->name);
    pair p;
    tide_ws_opts o;
    tide_ws_opts_init(&o);
    o.max_message = v->max_message;
    pair_open(&p, &o);
    for (int i = 0; i < 3 && v->payload[i]; i++)
        peer_frame(p.peer, v->frames[i], v->payload[i], v->plen[i], v->unmasked);
    tide_ws_msg m;
    int rc = tide_ws_recv(p.ws, &m);
    if (rc != v->err)
        fprintf(stderr, "violation %s: %d (%s)\n", v->name, rc, tide_strerror(rc));
    assert_int_equal(rc, v->err);
    assert_int_equal(tide_ws_recv(p.ws, &m), v->err); /* sticks */
    assert_int_equal(tide_ws_send(p.ws, TIDE_WS_OP_TEXT, "x", 1), v->err);
    int code = peer_read_close(p.peer);
    assert_int_equal(code, v->code);
    /* A failed connection does not wait for the peer's close. */
    int64_t t0 = tide_now();
    assert_int_equal(tide_ws_close(p.ws, 1000, NULL), v->err);
    assert_true(tide_now() - t0 < 1000);
    p.ws = NULL;
    pair_close(&p);
    return 0;
}

static void test_violations(void **state)
{
    (void)state;
    int before = tt_count_fds();
    for (size_t i = 0; i < TT_ARRAY_LEN(violations); i++)
        assert_int_equal(tide_run(violation_main, (void *)&violations[i]), 0);
    assert_int_equal(tt_count_fds(), before);
}

static int vanish_main(void *arg)
{
    (void)arg;
    pair p;
    pair_open(&p, NULL);
    /* Half a frame, then the peer is gone. */
    uint8_t half[] = {0x81, 0x85, 1, 2};
    assert_int_equal(tide_stream_write(p.peer, half, sizeof half), 4);
    assert_int_equal(tide_stream_close(p.peer), 0);
    tide_ws_msg m;
    assert_int_equal(tide_ws_recv(p.ws, &m), -ECONNRESET);
    assert_int_equal(tide_ws_close_code(p.ws), 1006);
    assert_int_equal(tide_ws_close(p.ws, 1000, NULL), -ECONNRESET);
    tide_stream_close(p.srv);
    return 0;
}

static void test_peer_vanishes(void **state)
{
    (void)state;
    int before = tt_count_fds();
    assert_int_equal(tide_run(vanish_main, NULL), 0);
    assert_int_equal(tt_count_fds(), before);
}

/* The peer answers tide's close after a data frame. */
static int closer_peer(void *arg)
{
    tide_stream *s = (tide_stream *)arg;
    int code = peer_read_close(s);
    peer_frame(s, 0x82, "late", 4, 0); /* dropped by tide_ws_close */
    peer_frame(s, 0x88, "\x03\xe9", 2, 0);
    return code;
}

static int close_main(void *arg)
{
    (void)arg;
    pair p;
    tide_ws_opts o;
    tide_ws_opts_init(&o);
    o.close_timeout_ms = 200;
    pair_open(&p, &o);
    tide_task *t;
    assert_int_equal(tide_create_task(&t, closer_peer, p.peer), 0);
    assert_int_equal(tide_ws_close(p.ws, 1001, "going"), 0);
    assert_int_equal(tide_await(t), 1001);
    p.ws = NULL;
    pair_close(&p);

    /* A peer that never answers: bounded by close_timeout_ms. */
    pair_open(&p, &o);
    int64_t t0 = tide_now();
    assert_int_equal(tide_ws_close(p.ws, 1000, NULL), -ETIMEDOUT);
    int64_t took = tide_now() - t0;
    assert_true(took >= 150 && took < 2000);
    p.ws = NULL;
    assert_int_equal(peer_read_close(p.peer), 1000);
    pair_close(&p);

    /* A bad code: still closed (with 1000), -EINVAL. */
    pair_open(&p, &o);
    assert_int_equal(tide_ws_close(p.ws, 1005, NULL), -EINVAL);
    p.ws = NULL;
    assert_int_equal(peer_read_close(p.peer), 1000);
    pair_close(&p);
    return 0;
}

static void test_close_handshake(void **state)
{
    (void)state;
    int before = tt_count_fds();
    assert_int_equal(tide_run(close_main, NULL), 0);
    assert_int_equal(tt_count_fds(), before);
}

static int keepalive_main(void *arg)
{
    (void)arg;
    pair p;
    tide_ws_opts o;
    tide_ws_opts_init(&o);
    o.ping_interval_ms = 30;
    o.ping_timeout_ms = 60;
    pair_open(&p, &o);
    /* The peer answers the first ping, then sends a message. */
    tide_ws_msg m;
    uint8_t buf[200];
    size_t len;
    int64_t t0 = tide_now();
    peer_frame(p.peer, 0x81, "first", 5, 0);
    assert_int_equal(tide_ws_recv(p.ws, &m), 0);
    assert_true(tide_now() - t0 < 1000);
    /* Now the peer stays silent: a ping after ~30 ms, failure ~60 ms later. */
    t0 = tide_now();
    assert_int_equal(tide_ws_recv(p.ws, &m), -ETIMEDOUT);
    int64_t took = tide_now() - t0;
    assert_true(took >= 80);
    assert_int_equal(peer_read(p.peer, buf, sizeof buf, &len, NULL), TIDE_WS_OP_PING);
    assert_int_equal(peer_read_close(p.peer), 1011);
    assert_int_equal(tide_ws_close(p.ws, 0, NULL), -ETIMEDOUT);
    p.ws = NULL;
    pair_close(&p);
    return 0;
}

/* A peer that answers pings (and then sends a message). */
static int pong_peer(void *arg)
{
    tide_stream *s = (tide_stream *)arg;
    uint8_t buf[200];
    size_t len;
    for (int i = 0; i < 3; i++) {
        int op = peer_read(s, buf, sizeof buf, &len, NULL);
        if (op != TIDE_WS_OP_PING)
            return -1;
        peer_frame(s, 0x8a, buf, len, 0);
    }
    peer_frame(s, 0x81, "done", 4, 0);
    return 0;
}

static int keepalive_ok_main(void *arg)
{
    (void)arg;
    pair p;
    tide_ws_opts o;
    tide_ws_opts_init(&o);
    o.ping_interval_ms = 20;
    o.ping_timeout_ms = 5000;
    pair_open(&p, &o);
    tide_task *t;
    assert_int_equal(tide_create_task(&t, pong_peer, p.peer), 0);
    tide_ws_msg m;
    assert_int_equal(tide_ws_recv(p.ws, &m), 0);
    assert_string_equal((const char *)m.data, "done");
    assert_int_equal(tide_ws_pongs(p.ws), 3);
    assert_int_equal(tide_await(t), 0);
    pair_close(&p);
    return 0;
}

static void test_keepalive(void **state)
{
    (void)state;
    int before = tt_count_fds();
    assert_int_equal(tide_run(keepalive_main, NULL), 0);
    assert_int_equal(tide_run(keepalive_ok_main, NULL), 0);
    assert_int_equal(tt_count_fds(), before);
}

/* ------------------------------------------- tide as a client, raw server */

typedef struct raw_server {
    tide_stream *s;
    const char *answer; /* NULL: a correct 101 */
} raw_server;

static int raw_server_main(void *arg)
{
    raw_server *r = (raw_server *)arg;
    char head[2048];
    ssize_t n = tide_stream_readuntil(r->s, "\r\n\r\n", 4, head, sizeof head);
    if (n <= 0)
        return -1;
    tide_http_header h[32];
    tide_http_request req;
    tide_http_request_init(&req, h, 32);
    if (tide_http_parse_request(head, (size_t)n, &req) != n)
        return -2;
    if (tide_ws_check_request(&req, NULL, NULL) != 0)
        return -3;
    size_t kl;
    const char *key = tide_http_header_get(h, req.num_headers, "Sec-WebSocket-Key", &kl);
    char acc[29], out[512];
    tide_ws_accept_key(key, kl, acc);
    if (r->answer)
        snprintf(out, sizeof out, "%s", r->answer);
    else
        snprintf(out, sizeof out,
                 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                 acc);
    tide_stream_write(r->s, out, strlen(out));
    return 0;
}

static int client_main(void *arg)
{
    (void)arg;
    int sv[2];
    tide_stream *cs, *ss;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(tide_stream_open(&cs, sv[0], NULL), 0);
    assert_int_equal(tide_stream_open(&ss, sv[1], NULL), 0);
    raw_server r = {ss, NULL};
    tide_task *t;
    assert_int_equal(tide_create_task(&t, raw_server_main, &r), 0);
    tide_ws *ws;
    assert_int_equal(tide_ws_handshake(cs, "example.com", "/x?y=1", NULL, &ws), 0);
    assert_int_equal(tide_await(t), 0);
    /* Client frames are masked, with a fresh key each. */
    assert_int_equal(tide_ws_send(ws, TIDE_WS_OP_TEXT, "abc", 3), 0);
    assert_int_equal(tide_ws_send(ws, TIDE_WS_OP_TEXT, "abc", 3), 0);
    uint8_t raw[18];
    assert_int_equal(tide_stream_readexactly(ss, raw, 18), 18);
    assert_int_equal(raw[0], 0x81);
    assert_int_equal(raw[1], 0x83);
    assert_memory_not_equal(raw + 2, raw + 11, 4);
    tide_ws_mask(raw + 6, 3, raw + 2, 0);
    assert_memory_equal(raw + 6, "abc", 3);
    /* Server frames come unmasked; a masked one is a violation. */
    static const uint8_t srv_hello[] = {0x81, 0x02, 'h', 'i'};
    tide_stream_write(ss, srv_hello, 4);
    tide_ws_msg m;
    assert_int_equal(tide_ws_recv(ws, &m), 0);
    assert_string_equal((const char *)m.data, "hi");
    peer_frame(ss, 0x81, "hi", 2, 0);
    assert_int_equal(tide_ws_recv(ws, &m), -EPROTO);
    /* The close frame tide sends is masked too. */
    uint8_t h[2];
    assert_int_equal(tide_stream_readexactly(ss, h, 2), 2);
    assert_int_equal(h[0], 0x88);
    assert_int_equal(h[1], 0x82);
    assert_int_equal(tide_ws_close(ws, 1000, NULL), -EPROTO); /* closes cs */
    tide_stream_close(ss);

    /* Bad answers: refused with -EPROTO, the stream stays the caller's. */
    const char *answers[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        /* the accept key of another request */
        ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"),
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n",
        "garbage\r\n\r\n",
    };
    for (size_t i = 0; i < TT_ARRAY_LEN(answers); i++) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
        assert_int_equal(tide_stream_open(&cs, sv[0], NULL), 0);
        assert_int_equal(tide_stream_open(&ss, sv[1], NULL), 0);
        r.s = ss;
        r.answer = answers[i];
        assert_int_equal(tide_create_task(&t, raw_server_main, &r), 0);
        assert_int_equal(tide_ws_handshake(cs, "h", "/", NULL, &ws), -EPROTO);
        assert_null(ws);
        assert_int_equal(tide_await(t), 0);
        tide_stream_close(cs);
        tide_stream_close(ss);
    }
    /* A server that closes at once. */
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(tide_stream_open(&cs, sv[0], NULL), 0);
    close(sv[1]);
    int rc = tide_ws_handshake(cs, "h", "/", NULL, &ws);
    assert_true(rc == -ECONNRESET || rc == -EPIPE || rc == -EPROTO);
    tide_stream_close(cs);
    return 0;
}

static void test_client_raw_server(void **state)
{
    (void)state;
    int before = tt_count_fds();
    assert_int_equal(tide_run(client_main, NULL), 0);
    assert_int_equal(tt_count_fds(), before);
}

/* ------------------------------------------------ tide against tide (TCP) */

static int tcp_handler(tide_stream *s, void *arg)
{
    (void)arg;
    tide_ws_opts o;
    tide_ws_opts_init(&o);
    o.subprotocols = "b, c";
    tide_ws *ws;
    if (tt_ws_accept_stream(s, &o, &ws) == 0)
        tt_ws_echo(ws);
    return 0;
}

#define NMSG 300

static int sender(void *arg)
{
    tide_ws *ws = (tide_ws *)arg;
    char buf[64];
    for (int i = 0; i < NMSG; i++) {
        int n = snprintf(buf, sizeof buf, "message %d", i);
        int rc = tide_ws_send(ws, TIDE_WS_OP_TEXT, buf, (size_t)n);
        if (rc < 0)
            return rc;
        if (i % 50 == 0 && (rc = tide_ws_ping(ws, "p", 1)) < 0)
            return rc;
    }
    return 0;
}

static int tcp_main(void *arg)
{
    (void)arg;
    tide_server *srv;
    assert_int_equal(tide_start_server("127.0.0.1", 0, tcp_handler, NULL, NULL, &srv), 0);
    char url[128];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/echo?a=b", tide_server_port(srv));
    tide_ws_opts o;
    tide_ws_opts_init(&o);
    o.subprotocols = "a, c";
    tide_ws *ws;
    assert_int_equal(tide_ws_connect(url, &o, &ws), 0);
    assert_string_equal(tide_ws_subprotocol(ws), "c");
    /* One task sends while this one reads. */
    tide_task *t;
    assert_int_equal(tide_create_task(&t, sender, ws), 0);
    tide_ws_msg m;
    for (int i = 0; i < NMSG; i++) {
        char want[64];
        snprintf(want, sizeof want, "message %d", i);
        assert_int_equal(tide_ws_recv(ws, &m), 0);
        assert_string_equal((const char *)m.data, want);
    }
    assert_int_equal(tide_await(t), 0);
    assert_true(tide_ws_pongs(ws) >= 1);
    assert_int_equal(tide_ws_close(ws, 1000, "done"), 0);
    assert_int_equal(tide_server_close(srv, TIDE_SERVER_WAIT), 0);
    return 0;
}

static void test_tcp_concurrent(void **state)
{
    (void)state;
    int before = tt_count_fds();
    assert_int_equal(tide_run(tcp_main, NULL), 0);
    assert_int_equal(tt_count_fds(), before);
}

/* -------------------------------------------------------------- bad args */

static int reader_task(void *arg)
{
    tide_ws_msg m;
    return tide_ws_recv((tide_ws *)arg, &m);
}

static int badargs_main(void *arg)
{
    (void)arg;
    tide_ws *ws;
    tide_ws_msg m;
    assert_int_equal(tide_ws_connect(NULL, NULL, &ws), -EINVAL);
    assert_int_equal(tide_ws_connect("ws://h/", NULL, NULL), -EINVAL);
    assert_int_equal(tide_ws_connect("http://h/", NULL, &ws), -EPROTONOSUPPORT);
    assert_int_equal(tide_ws_connect("ws:///x", NULL, &ws), -EINVAL);
    assert_int_equal(tide_ws_connect("ws://h:99999/", NULL, &ws), -EINVAL);
    assert_int_equal(tide_ws_connect("ws://h:/", NULL, &ws), -EINVAL);
    assert_int_equal(tide_ws_connect("ws://h/#frag", NULL, &ws), -EINVAL);
    assert_int_equal(tide_ws_connect("ws://[::1/", NULL, &ws), -EINVAL);
    assert_int_equal(tide_ws_connect("ws://h/a b", NULL, &ws), -EINVAL);
    tide_ws_opts o;
    tide_ws_opts_init(&o);
    o.close_timeout_ms = -1;
    assert_int_equal(tide_ws_connect("ws://h/", &o, &ws), -EINVAL);
    tide_ws_opts_init(&o);
    o.max_message = SIZE_MAX;
    assert_int_equal(tide_ws_connect("ws://h/", &o, &ws), -EINVAL);
    assert_int_equal(tide_ws_recv(NULL, &m), -EINVAL);
    assert_int_equal(tide_ws_send(NULL, TIDE_WS_OP_TEXT, "a", 1), -EINVAL);
    assert_int_equal(tide_ws_close(NULL, 0, NULL), -EINVAL);
    assert_int_equal(tide_ws_accept(NULL, NULL, NULL, &ws), -EINVAL);
    /* A refused connection. */
    int lfd = tide_tcp_listen("127.0.0.1", 0, NULL);
    assert_true(lfd >= 0);
    int port = tide_sock_port(lfd);
    tide_close(lfd);
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", port);
    assert_int_equal(tide_ws_connect(url, NULL, &ws), -ECONNREFUSED);

    pair p;
    pair_open(&p, NULL);
    assert_int_equal(tide_ws_recv(p.ws, NULL), -EINVAL);
    assert_int_equal(tide_ws_send(p.ws, TIDE_WS_OP_PING, "a", 1), -EINVAL);
    assert_int_equal(tide_ws_send(p.ws, TIDE_WS_OP_TEXT, NULL, 1), -EINVAL);
    assert_int_equal(tide_ws_send_fragments(p.ws, TIDE_WS_OP_TEXT, NULL, 1), -EINVAL);
    char big[200] = {0};
    assert_int_equal(tide_ws_ping(p.ws, big, 126), -EINVAL);
    /* Two readers: the second gets -EBUSY. */
    tide_task *t;
    assert_int_equal(tide_create_task(&t, reader_task, p.ws), 0);
    assert_int_equal(tide_sleep(1), 0);
    assert_int_equal(tide_ws_recv(p.ws, &m), -EBUSY);
    peer_frame(p.peer, 0x81, "z", 1, 0);
    assert_int_equal(tide_await(t), 0);
    /* A handshake that fails writes its answer. */
    tide_http_request req;
    parse_req("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 7\r\n\r\n",
              &req);
    tide_ws *ws2;
    assert_int_equal(tide_ws_accept(p.srv, &req, NULL, &ws2), -EPROTO);
    assert_null(ws2);
    pair_close(&p);
    return 0;
}

static void test_bad_args(void **state)
{
    (void)state;
    tide_ws_msg m;
    tide_ws *ws;
    /* Outside a task. */
    assert_int_equal(tide_ws_connect("ws://127.0.0.1:1/", NULL, &ws), -EPERM);
    assert_int_equal(tide_ws_recv((tide_ws *)&m, &m), -EPERM);
    int before = tt_count_fds();
    assert_int_equal(tide_run(badargs_main, NULL), 0);
    assert_int_equal(tt_count_fds(), before);
}

static int refuse_main(void *arg)
{
    (void)arg;
    int sv[2];
    tide_stream *a, *b;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(tide_stream_open(&a, sv[0], NULL), 0);
    assert_int_equal(tide_stream_open(&b, sv[1], NULL), 0);
    tide_http_request req;
    parse_req("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 7\r\n\r\n",
              &req);
    tide_ws *ws;
    assert_int_equal(tide_ws_accept(a, &req, NULL, &ws), -EPROTO);
    char head[1024];
    ssize_t n = tide_stream_readuntil(b, "\r\n\r\n", 4, head, sizeof head - 1);
    assert_true(n > 0);
    head[n] = 0;
    assert_non_null(strstr(head, "HTTP/1.1 426 "));
    assert_non_null(strstr(head, "Sec-WebSocket-Version: 13\r\n"));
    tide_stream_close(a);
    tide_stream_close(b);
    return 0;
}

static void test_refused_upgrade(void **state)
{
    (void)state;
    assert_int_equal(tide_run(refuse_main, NULL), 0);
}

/* A long frame is written in pieces with drains between them; a ping that
 * comes meanwhile is answered after the frame, never inside it. */
typedef struct longframe {
    tide_ws *ws;
    int recv_rc;
} longframe;

static int lf_reader(void *arg)
{
    longframe *lf = (longframe *)arg;
    tide_ws_msg m;
    lf->recv_rc = tide_ws_recv(lf->ws, &m);
    return 0;
}

static int lf_sender(void *arg)
{
    longframe *lf = (longframe *)arg;
    size_t n = 4 << 20;
    uint8_t *big = malloc(n);
    if (!big)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        big[i] = (uint8_t)(i * 11);
    int rc = tide_ws_send(lf->ws, TIDE_WS_OP_BINARY, big, n);
    free(big);
    return rc;
}

static int longframe_main(void *arg)
{
    (void)arg;
    pair p;
    pair_open(&p, NULL);
    longframe lf = {p.ws, 1};
    tide_task *r, *w;
    assert_int_equal(tide_create_task(&r, lf_reader, &lf), 0);
    assert_int_equal(tide_create_task(&w, lf_sender, &lf), 0);
    /* Let the sender fill the socket and wait in a drain mid-frame. */
    for (int i = 0; i < 500 && tide_stream_write_pending(p.srv) == 0; i++)
        assert_int_equal(tide_sleep(10), 0);
    assert_true(tide_stream_write_pending(p.srv) > 0);
    peer_frame(p.peer, 0x89, "mid", 3, 0);
    assert_int_equal(tide_stream_flush(p.peer), 0);
    assert_int_equal(tide_sleep(20), 0);
    /* and a ping of ours (it does not wait for the sender's lock) */
    assert_int_equal(tide_ws_ping(p.ws, "own", 3), 0);
    /* Now read: the whole binary frame first, then the pong. */
    static uint8_t buf[4 << 20];
    size_t len;
    int fin;
    assert_int_equal(peer_read(p.peer, buf, sizeof buf, &len, &fin), TIDE_WS_OP_BINARY);
    assert_int_equal(len, 4 << 20);
    for (size_t i = 0; i < len; i += 4099)
        assert_int_equal(buf[i], (uint8_t)(i * 11));
    assert_int_equal(peer_read(p.peer, buf, sizeof buf, &len, NULL), TIDE_WS_OP_PING);
    assert_int_equal(len, 3);
    assert_memory_equal(buf, "own", 3);
    assert_int_equal(peer_read(p.peer, buf, sizeof buf, &len, NULL), TIDE_WS_OP_PONG);
    assert_int_equal(len, 3);
    assert_memory_equal(buf, "mid", 3);
    assert_int_equal(tide_await(w), 0);
    peer_frame(p.peer, 0x82, "end", 3, 0);
    assert_int_equal(tide_await(r), 0);
    assert_int_equal(lf.recv_rc, 0);
    pair_close(&p);
    return 0;
}

static void test_control_during_long_frame(void **state)
{
    (void)state;
    int before = tt_count_fds();
    assert_int_equal(tide_run(longframe_main, NULL), 0);
    assert_int_equal(tt_count_fds(), before);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc_vectors),     cmocka_unit_test(test_mask_phases),
        cmocka_unit_test(test_accept_key),      cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_close_parse),     cmocka_unit_test(test_check_request),
        cmocka_unit_test(test_server_echo),     cmocka_unit_test(test_violations),
        cmocka_unit_test(test_peer_vanishes),   cmocka_unit_test(test_close_handshake),
        cmocka_unit_test(test_keepalive),       cmocka_unit_test(test_client_raw_server),
        cmocka_unit_test(test_tcp_concurrent),  cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_refused_upgrade), cmocka_unit_test(test_control_during_long_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
