/*
 * The HTTP client against real peers on loopback (ctest label "peers"):
 * Python's http.server (python3 -m http.server: files, 404, HEAD, the
 * directory redirect), a small Python HTTP/1.1 server (keep-alive reuse
 * seen from the server side, chunked responses with trailers, chunked and
 * fixed uploads, a redirect), the same server over TLS (https with the
 * test CA, SNI and keep-alive; a certificate the default trust store
 * refuses), openssl s_server -WWW (https, HTTP/1.0 until close), and
 * examples/http_fetch against python3 -m http.server.  A peer that is not
 * installed skips its test.
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
#include <unistd.h>

#include "tide.h"
#include "tide/tls.h"
#include "peer_util.h"
#include "http_util.h"
#include "tls_util.h"

/* Spawns argv (in cwd) with its output piped; waits up to 10 s for a line
 * containing ready.  0 or -1. */
static int start_peer(tide_process **p, const char *const *argv, const char *cwd,
                      const char *ready)
{
    return tt_peer_start(p, argv, cwd, NULL, TT_PEER_STDIN, 10000, ready, NULL, 0);
}

/* ------------------------------------------------- python3 -m http.server */

static int pyfiles_main(void *arg)
{
    tide_process *p;
    tide_http_client *c = NULL;
    tide_http_req_opts o;
    tide_http_resp *r;
    char port[16], url[128], *body = NULL;
    int pn = tt_free_port(), rc = 0;
    (void)arg;
    snprintf(port, sizeof port, "%d", pn);
    const char *argv[] = {"python3", "-u", "-m", "http.server", port, "--bind", "127.0.0.1", NULL};
    if (start_peer(&p, argv, tt_dir(), "Serving HTTP") < 0)
        return -1;
    tide_sleep(100);
    TT_CHECK(tide_http_client_new(&c, NULL) == 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/files/hello.txt", pn);
    TT_CHECK(tt_http_get(c, url, NULL, &body, 1 << 20) == 200);
    TT_CHECK(!strcmp(body, "hello from a file\n"));
    free(body);
    body = NULL;
    snprintf(url, sizeof url, "http://localhost:%d/files/missing", pn);
    TT_CHECK(tt_http_get(c, url, NULL, &body, 1 << 20) == 404);
    free(body);
    body = NULL;
    /* HEAD: the size in the head, no body. */
    tide_http_req_opts_init(&o);
    o.method = "HEAD";
    snprintf(url, sizeof url, "http://127.0.0.1:%d/files/hello.txt", pn);
    TT_CHECK(tide_http_client_request(c, url, &o, &r) == 0);
    TT_CHECK(tide_http_resp_status(r) == 200 && tide_http_resp_content_length(r) == 0);
    TT_CHECK(tide_http_resp_header(r, "content-length", NULL) &&
             atoi(tide_http_resp_header(r, "content-length", NULL)) == 18);
    tide_http_resp_free(r);
    /* /files -> 301 /files/ (a listing). */
    tide_http_req_opts_init(&o);
    o.max_redirects = 2;
    snprintf(url, sizeof url, "http://127.0.0.1:%d/files", pn);
    TT_CHECK(tide_http_client_request(c, url, &o, &r) == 0);
    TT_CHECK(tide_http_resp_status(r) == 200);
    TT_CHECK(strstr(tide_http_resp_url(r), "/files/") != NULL);
    TT_CHECK(tide_http_resp_read_all(r, &body, 0) > 0 && strstr(body, "hello.txt"));
    tide_http_resp_free(r);
out:
    free(body);
    tide_http_client_free(c);
    tt_peer_stop(p);
    return rc;
}

static void test_python_http_server(void **st)
{
    (void)st;
    TT_NEED("python3");
    assert_int_equal(tide_run(pyfiles_main, NULL), 0);
}

/* ---------------------------------------- a Python HTTP/1.1 server script */

static const char PY_SERVER[] =
    "import sys, ssl, http.server, socketserver\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    protocol_version = 'HTTP/1.1'\n"
    "    def log_message(self, *a): pass\n"
    "    def body(self, data, code=200):\n"
    "        self.send_response(code)\n"
    "        self.send_header('Content-Length', str(len(data)))\n"
    "        self.end_headers()\n"
    "        self.wfile.write(data)\n"
    "    def do_GET(self):\n"
    "        if self.path == '/chunked':\n"
    "            self.send_response(200)\n"
    "            self.send_header('Transfer-Encoding', 'chunked')\n"
    "            self.end_headers()\n"
    "            for part in [b'hello ', b'from ', b'python']:\n"
    "                self.wfile.write(b'%x\\r\\n%s\\r\\n' % (len(part), part))\n"
    "            self.wfile.write(b'0\\r\\nX-Trailer: yes\\r\\n\\r\\n')\n"
    "        elif self.path == '/redirect':\n"
    "            self.send_response(302)\n"
    "            self.send_header('Location', 'peer?from=redirect')\n"
    "            self.send_header('Content-Length', '0')\n"
    "            self.end_headers()\n"
    "        else:\n"
    "            self.body(('%s %d' % (self.path, self.client_address[1])).encode())\n"
    "    def do_POST(self):\n"
    "        if self.headers.get('Transfer-Encoding') == 'chunked':\n"
    "            data = b''\n"
    "            while True:\n"
    "                n = int(self.rfile.readline().split(b';')[0], 16)\n"
    "                if n == 0:\n"
    "                    while self.rfile.readline() not in (b'\\r\\n', b''): pass\n"
    "                    break\n"
    "                data += self.rfile.read(n)\n"
    "                self.rfile.readline()\n"
    "        else:\n"
    "            data = self.rfile.read(int(self.headers.get('Content-Length', '0')))\n"
    "        self.body(data)\n"
    "class S(socketserver.ThreadingMixIn, http.server.HTTPServer):\n"
    "    daemon_threads = True\n"
    "srv = S(('127.0.0.1', 0), H)\n"
    "if len(sys.argv) > 2:\n"
    "    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
    "    ctx.load_cert_chain(sys.argv[1], sys.argv[2])\n"
    "    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)\n"
    "print('PORT %d' % srv.server_address[1], flush=True)\n"
    "srv.serve_forever()\n";

static int start_py(tide_process **p, int tls, int *port)
{
    char line[256];
    tide_process_opts o;
    tide_scope sc;
    ssize_t n;
    const char *argv_plain[] = {"python3", "-u", tt_dir_path("server.py"), NULL};
    const char *argv_tls[] = {"python3",
                              "-u",
                              tt_dir_path("server.py"),
                              tt_dir_path("server.pem"),
                              tt_dir_path("server.key"),
                              NULL};
    tide_process_opts_init(&o);
    o.stdout_mode = TIDE_PROC_PIPE;
    if (tide_process_spawn(p, tls ? argv_tls : argv_plain, &o) < 0)
        return -1;
    tide_timeout_begin(&sc, 10000);
    n = tide_stream_readline(tide_process_stdout(*p), line, sizeof line - 1);
    tide_timeout_end(&sc);
    if (n <= 5 || strncmp(line, "PORT ", 5) != 0) {
        tt_peer_stop(*p);
        return -1;
    }
    line[n] = 0;
    *port = atoi(line + 5);
    return 0;
}

typedef struct up {
    int left;
} up;

static ssize_t up_fn(void *arg, void *buf, size_t cap)
{
    up *u = arg;
    if (!u->left || cap < 7)
        return 0;
    u->left--;
    memcpy(buf, "stream ", 7);
    return 7;
}

static int py_exchange(tide_http_client *c, const char *scheme, int port)
{
    char url[128], *body = NULL, first[64] = "";
    tide_http_req_opts o;
    tide_http_resp *r;
    size_t len;
    const char *v;
    int rc = 0;
    up u = {3};

    /* Keep-alive: the server sees the same client port every time. */
    for (int i = 0; i < 5; i++) {
        snprintf(url, sizeof url, "%s://localhost:%d/peer", scheme, port);
        TT_CHECK(tt_http_get(c, url, NULL, &body, 1 << 20) == 200);
        if (i == 0)
            snprintf(first, sizeof first, "%s", body);
        TT_CHECK(!strcmp(body, first));
        free(body);
        body = NULL;
    }
    TT_CHECK(tide_http_client_connects(c) == 1);
    /* Chunked with a trailer. */
    snprintf(url, sizeof url, "%s://localhost:%d/chunked", scheme, port);
    TT_CHECK(tide_http_client_request(c, url, NULL, &r) == 0);
    TT_CHECK(tide_http_resp_read_all(r, &body, 0) == 17 && !strcmp(body, "hello from python"));
    v = tide_http_resp_trailer(r, "x-trailer", &len);
    TT_CHECK(v && len == 3);
    tide_http_resp_free(r);
    free(body);
    body = NULL;
    /* Uploads: chunked, then fixed. */
    tide_http_req_opts_init(&o);
    o.method = "POST";
    o.body_fn = up_fn;
    o.body_arg = &u;
    snprintf(url, sizeof url, "%s://localhost:%d/echo", scheme, port);
    TT_CHECK(tt_http_get(c, url, &o, &body, 1 << 20) == 200 &&
             !strcmp(body, "stream stream stream "));
    free(body);
    body = NULL;
    tide_http_req_opts_init(&o);
    o.method = "POST";
    o.body = "fixed body";
    o.body_len = 10;
    TT_CHECK(tt_http_get(c, url, &o, &body, 1 << 20) == 200 && !strcmp(body, "fixed body"));
    free(body);
    body = NULL;
    /* A relative redirect. */
    tide_http_req_opts_init(&o);
    o.max_redirects = 1;
    snprintf(url, sizeof url, "%s://localhost:%d/redirect", scheme, port);
    TT_CHECK(tt_http_get(c, url, &o, &body, 1 << 20) == 200 &&
             !strncmp(body, "/peer?from=redirect ", 20));
    TT_CHECK(tide_http_client_connects(c) == 1);
out:
    free(body);
    return rc;
}

static int py_main(void *arg)
{
    int tls = *(int *)arg, port, rc = 0;
    tide_process *p;
    tide_http_client *c = NULL;
    tide_http_client_opts co;
    tide_tls_ctx *ctx = NULL;
    tide_tls_opts to;

    if (start_py(&p, tls, &port) < 0)
        return -1;
    tide_http_client_opts_init(&co);
    if (tls) {
        tide_tls_opts_init(&to);
        to.ca_file = tt_dir_path("ca.pem");
        TT_CHECK(tide_tls_ctx_new(&ctx, TIDE_TLS_CLIENT, &to) == 0);
        co.tls_ctx = ctx;
    }
    TT_CHECK(tide_http_client_new(&c, &co) == 0);
    rc = py_exchange(c, tls ? "https" : "http", port);
    if (rc == 0 && tls) {
        /* The default trust store does not know the test CA. */
        tide_http_client *d;
        tide_http_resp *r;
        char url[128];
        TT_CHECK(tide_http_client_new(&d, NULL) == 0);
        snprintf(url, sizeof url, "https://localhost:%d/peer", port);
        rc = tide_http_client_request(d, url, NULL, &r);
        tide_http_client_free(d);
        TT_CHECK(rc == TIDE_TLS_ERR_VERIFY);
        rc = 0;
    }
out:
    tide_http_client_free(c);
    tide_tls_ctx_free(ctx);
    tt_peer_stop(p);
    return rc;
}

static void test_python_keepalive(void **st)
{
    int tls = 0;
    (void)st;
    TT_NEED("python3");
    assert_int_equal(tide_run(py_main, &tls), 0);
}

static void test_python_https(void **st)
{
    int tls = 1;
    (void)st;
    TT_NEED("python3");
    assert_int_equal(tide_run(py_main, &tls), 0);
}

/* ------------------------------------------------------ openssl s_server */

static int sserver_main(void *arg)
{
    tide_process *p;
    tide_http_client *c = NULL;
    tide_http_client_opts co;
    tide_tls_ctx *ctx = NULL;
    tide_tls_opts to;
    char acc[32], url[128], *body = NULL;
    int pn = tt_free_port(), rc = 0;
    (void)arg;
    snprintf(acc, sizeof acc, "127.0.0.1:%d", pn);
    const char *argv[] = {"openssl", "s_server",
                          "-accept", acc,
                          "-cert",   tt_dir_path("server.pem"),
                          "-key",    tt_dir_path("server.key"),
                          "-WWW",    NULL};
    if (start_peer(&p, argv, tt_dir(), "ACCEPT") < 0)
        return -1;
    tide_tls_opts_init(&to);
    to.ca_file = tt_dir_path("ca.pem");
    TT_CHECK(tide_tls_ctx_new(&ctx, TIDE_TLS_CLIENT, &to) == 0);
    tide_http_client_opts_init(&co);
    co.tls_ctx = ctx;
    TT_CHECK(tide_http_client_new(&c, &co) == 0);
    for (int i = 0; i < 3; i++) {
        snprintf(url, sizeof url, "https://127.0.0.1:%d/files/hello.txt", pn);
        TT_CHECK(tt_http_get(c, url, NULL, &body, 1 << 20) == 200);
        TT_CHECK(!strcmp(body, "hello from a file\n"));
        free(body);
        body = NULL;
    }
    /* HTTP/1.0, until close: a connection each. */
    TT_CHECK(tide_http_client_connects(c) == 3 && tide_http_client_idle(c) == 0);
out:
    free(body);
    tide_http_client_free(c);
    tide_tls_ctx_free(ctx);
    tt_peer_stop(p);
    return rc;
}

static void test_openssl_s_server_www(void **st)
{
    (void)st;
    TT_NEED("openssl");
    assert_int_equal(tide_run(sserver_main, NULL), 0);
}

/* ---------------------------------------------------- examples/http_fetch */

static void test_http_fetch_example(void **st)
{
    char cmd[1024], exe[512], out[256];
    int pn = tt_free_port(), rc;
    FILE *f;
    (void)st;
    TT_NEED("python3");
    {
        /* <build>/tests/test_http_tls_peers -> <build>/examples/http_fetch */
        char self[400];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        char *slash;
        assert_true(n > 0);
        self[n] = 0;
        slash = strrchr(self, '/');
        *slash = 0;
        snprintf(exe, sizeof exe, "%s/../examples/http_fetch", self);
    }
    if (access(exe, X_OK) != 0) {
        print_message("%s not built: skipped\n", exe);
        skip();
    }
    snprintf(cmd, sizeof cmd,
             "cd %s && (python3 -m http.server %d --bind 127.0.0.1 >/dev/null 2>&1 & echo $! "
             ">py.pid) && for i in $(seq 50); do python3 -c 'import socket,sys; "
             "socket.create_connection((\"127.0.0.1\", %d))' 2>/dev/null && break; sleep 0.1; "
             "done",
             tt_dir(), pn, pn);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "%s -c 2 -t 5000 -o %s/out http://127.0.0.1:%d/files/hello.txt "
             "http://127.0.0.1:%d/files/ >%s/fetch.txt 2>&1",
             exe, tt_dir(), pn, pn, tt_dir());
    rc = system(cmd);
    assert_int_equal(WEXITSTATUS(rc), 0);
    snprintf(cmd, sizeof cmd, "%s/out/1", tt_dir());
    f = fopen(cmd, "r");
    assert_non_null(f);
    assert_non_null(fgets(out, sizeof out, f));
    fclose(f);
    assert_string_equal(out, "hello from a file\n");
    /* A 404 and a refused connection: exit status 1, each reported. */
    snprintf(cmd, sizeof cmd, "%s http://127.0.0.1:%d/nope http://127.0.0.1:1/ >%s/fetch2.txt 2>&1",
             exe, pn, tt_dir());
    rc = system(cmd);
    assert_int_equal(WEXITSTATUS(rc), 1);
    snprintf(cmd, sizeof cmd, "grep -q '^404 ' %s/fetch2.txt && grep -q '^ERR ' %s/fetch2.txt",
             tt_dir(), tt_dir());
    rc = system(cmd);
    snprintf(cmd, sizeof cmd, "kill $(cat %s/py.pid)", tt_dir());
    (void)system(cmd);
    assert_int_equal(rc, 0);
}

static int setup(void **st)
{
    char path[200];
    FILE *f;
    (void)st;
    if (tt_certs_tmpdir(tt_dir(), TT_DIR_CAP, "/tmp/tide_http_peers.XXXXXX") < 0)
        return -1;
    snprintf(path, sizeof path, "%s/files", tt_dir());
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/files/hello.txt", tt_dir());
    f = fopen(path, "w");
    if (!f)
        return -1;
    fputs("hello from a file\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/out", tt_dir());
    mkdir(path, 0755);
    f = fopen(tt_dir_path("server.py"), "w");
    if (!f)
        return -1;
    fputs(PY_SERVER, f);
    fclose(f);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_python_http_server),
        cmocka_unit_test(test_python_keepalive),
        cmocka_unit_test(test_python_https),
        cmocka_unit_test(test_openssl_s_server_www),
        cmocka_unit_test(test_http_fetch_example),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, setup, tt_dir_teardown);
}
