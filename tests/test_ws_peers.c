/*
 * WebSocket against other implementations, on loopback (ctest label
 * "peers": not run under valgrind/TSan/qemu):
 *  - Debian's python3-websockets as a server (tide_ws_connect drives it)
 *    and as a client (against a tide echo server): text, binary, empty and
 *    large messages around the 125/126/65535/65536 length boundaries,
 *    fragments, pings with payloads, 200 messages in flight, the close
 *    handshake with codes and reasons, a subprotocol;
 *  - the npm "ws" package (strict: it fails the connection on any protocol
 *    error), installed into <build>/ws-peers by this test when missing,
 *    the same both ways, with a ping between fragments.
 * The peer scripts are tests/ws_peer.py and tests/ws_peer.js.  A peer that
 * is not installed skips its tests (scripts/deps.sh installs them).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tide.h"
#include "peer_util.h"
#include "ws_util.h"

#ifndef WS_SRC_DIR
#define WS_SRC_DIR "."
#endif
#ifndef WS_PEERS_DIR
#define WS_PEERS_DIR "ws-peers"
#endif

static const char *python(void)
{
    /* Debian's python3 (a pyenv or venv python3 earlier in PATH may lack
     * the Debian module). */
    if (system("/usr/bin/python3 -c 'import websockets' >/dev/null 2>&1") == 0)
        return "/usr/bin/python3";
    if (system("python3 -c 'import websockets' >/dev/null 2>&1") == 0)
        return "python3";
    return NULL;
}

static int have_node_ws(void)
{
    if (system("command -v node >/dev/null 2>&1") != 0)
        return 0;
    if (access(WS_PEERS_DIR "/node_modules/ws/package.json", R_OK) == 0)
        return 1;
    if (system("command -v npm >/dev/null 2>&1") != 0)
        return 0;
    /* One package, pinned to its major version, into the build dir. */
    int rc = system("mkdir -p '" WS_PEERS_DIR "' && cd '" WS_PEERS_DIR "' && "
                    "npm install --no-audit --no-fund --silent ws@8 >/dev/null 2>&1");
    return rc == 0 && access(WS_PEERS_DIR "/node_modules/ws/package.json", R_OK) == 0;
}

static const char *peer_env[] = {"NODE_PATH=" WS_PEERS_DIR "/node_modules", "PATH=/usr/bin:/bin",
                                 NULL};

/* Spawns argv; waits (10 s) for a stdout line starting with ready and
 * copies it into line.  0 or -1. */
static int start_peer(tide_process **p, const char *const *argv, const char *ready, char *line,
                      size_t cap)
{
    return tt_peer_start(p, argv, NULL, peer_env, TT_PEER_PREFIX | TT_PEER_ECHO, 10000, ready, line,
                         cap);
}

/* ------------------------------------------------ tide client, peer server */

static int expect_echo(tide_ws *ws, int op, const void *data, size_t len)
{
    tide_ws_msg m;
    int rc = tide_ws_send(ws, op, data, len);
    if (rc < 0)
        return rc;
    rc = tide_ws_recv(ws, &m);
    if (rc < 0)
        return rc;
    if (m.opcode != op || m.len != len || (len && memcmp(m.data, data, len)))
        return -EBADMSG;
    return 0;
}

static int client_main(void *arg)
{
    const char *const *argv = (const char *const *)arg;
    tide_process *p;
    char line[256], url[128];
    assert_int_equal(start_peer(&p, argv, "READY ", line, sizeof line), 0);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/some/path?q=1", atoi(line + 6));
    tide_ws_opts o;
    tide_ws_opts_init(&o);
    o.max_message = 1 << 24;
    tide_ws *ws;
    assert_int_equal(tide_ws_connect(url, &o, &ws), 0);
    size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, 65537, 1 << 20};
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    for (size_t i = 0; i < TT_ARRAY_LEN(sizes); i++) {
        memset(buf, 'a' + (int)i, sizes[i]);
        assert_int_equal(expect_echo(ws, TIDE_WS_OP_TEXT, buf, sizes[i]), 0);
        for (size_t j = 0; j < sizes[i]; j++)
            buf[j] = (char)(j * 13);
        assert_int_equal(expect_echo(ws, TIDE_WS_OP_BINARY, buf, sizes[i]), 0);
    }
    assert_int_equal(expect_echo(ws, TIDE_WS_OP_TEXT, "κόσμε €𐍈", strlen("κόσμε €𐍈")), 0);
    /* Fragments, with our ping between (sent from another path). */
    struct iovec parts[3] = {{(void *)"frag", 4}, {(void *)"ment", 4}, {(void *)"ed", 2}};
    assert_int_equal(tide_ws_send_fragments(ws, TIDE_WS_OP_TEXT, parts, 3), 0);
    assert_int_equal(tide_ws_ping(ws, "ping!", 5), 0);
    tide_ws_msg m;
    assert_int_equal(tide_ws_recv(ws, &m), 0);
    assert_string_equal((const char *)m.data, "fragmented");
    /* 200 in flight. */
    for (int i = 0; i < 200; i++) {
        char s[16];
        int n = snprintf(s, sizeof s, "m%d", i);
        assert_int_equal(tide_ws_send(ws, TIDE_WS_OP_TEXT, s, (size_t)n), 0);
    }
    for (int i = 0; i < 200; i++) {
        char s[16];
        snprintf(s, sizeof s, "m%d", i);
        assert_int_equal(tide_ws_recv(ws, &m), 0);
        assert_string_equal((const char *)m.data, s);
    }
    assert_true(tide_ws_pongs(ws) >= 1);
    /* The server closes with 4000: recv says -EPIPE with its code. */
    assert_int_equal(tide_ws_send(ws, TIDE_WS_OP_TEXT, "close-4000", 10), 0);
    assert_int_equal(tide_ws_recv(ws, &m), -EPIPE);
    assert_int_equal(tide_ws_close_code(ws), 4000);
    assert_string_equal(tide_ws_close_reason(ws), "as asked");
    assert_int_equal(tide_ws_close(ws, 0, NULL), 0);
    /* And a close we start. */
    assert_int_equal(tide_ws_connect(url, &o, &ws), 0);
    assert_int_equal(expect_echo(ws, TIDE_WS_OP_TEXT, "x", 1), 0);
    assert_int_equal(tide_ws_close(ws, 1000, "bye"), 0);
    free(buf);
    tt_peer_stop(p);
    return 0;
}

static void test_python_server(void **state)
{
    (void)state;
    const char *py = python();
    if (!py) {
        print_message("python3-websockets not installed (apt-get install python3-websockets)\n");
        skip();
    }
    const char *argv[] = {py, WS_SRC_DIR "/tests/ws_peer.py", "server", NULL};
    assert_int_equal(tide_run(client_main, argv), 0);
}

static void test_node_server(void **state)
{
    (void)state;
    if (!have_node_ws()) {
        print_message("node/npm ws not available: skipped\n");
        skip();
    }
    const char *argv[] = {"node", WS_SRC_DIR "/tests/ws_peer.js", "server", NULL};
    assert_int_equal(tide_run(client_main, argv), 0);
}

/* ------------------------------------------------ peer client, tide server */

static int echo_handler(tide_stream *s, void *arg)
{
    (void)arg;
    tide_ws_opts o;
    tide_ws_opts_init(&o);
    o.max_message = 1 << 24;
    o.subprotocols = "echo";
    tide_ws *ws;
    if (tt_ws_accept_stream(s, &o, &ws) == 0)
        tt_ws_echo(ws);
    return 0;
}

static int server_main(void *arg)
{
    const char **argv = (const char **)arg;
    tide_server *srv;
    assert_int_equal(tide_start_server("127.0.0.1", 0, echo_handler, NULL, NULL, &srv), 0);
    char url[64], line[256];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", tide_server_port(srv));
    argv[3] = url;
    tide_process *p;
    assert_int_equal(start_peer(&p, argv, "OK", line, sizeof line), 0);
    int status = -1;
    assert_int_equal(tide_process_wait(p, &status), 0);
    tide_process_free(p);
    assert_int_equal(status, 0);
    assert_int_equal(tide_server_close(srv, TIDE_SERVER_CANCEL), 0);
    return 0;
}

static void test_python_client(void **state)
{
    (void)state;
    const char *py = python();
    if (!py) {
        print_message("python3-websockets not installed: skipped\n");
        skip();
    }
    const char *argv[] = {py, WS_SRC_DIR "/tests/ws_peer.py", "client", NULL, NULL};
    assert_int_equal(tide_run(server_main, argv), 0);
}

static void test_node_client(void **state)
{
    (void)state;
    if (!have_node_ws()) {
        print_message("node/npm ws not available: skipped\n");
        skip();
    }
    const char *argv[] = {"node", WS_SRC_DIR "/tests/ws_peer.js", "client", NULL, NULL};
    assert_int_equal(tide_run(server_main, argv), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_python_server),
        cmocka_unit_test(test_python_client),
        cmocka_unit_test(test_node_server),
        cmocka_unit_test(test_node_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
