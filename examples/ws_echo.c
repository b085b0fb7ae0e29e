/*
 * ws_echo.c -- a WebSocket echo server: every message a client sends (text
 * or binary, on any path) comes back as it came.
 *
 *   ws_echo [HOST] PORT        e.g.  ws_echo 9001
 *
 * HOST defaults to 127.0.0.1; PORT 0 picks a free port (the "listening on"
 * line tells which).  Stops cleanly on SIGINT or SIGTERM.  Try it with
 * python3 -m websockets ws://127.0.0.1:9001/ (Debian: python3-websockets).
 *
 * The HTTP part is the small upgrade_request() below: read the request head
 * from the stream and parse it.  With tide's HTTP server the handler gets
 * the parsed request instead, and calls tide_ws_accept the same way.
 */
#include <tide.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEAD_MAX 8192
#define MAX_HEADERS 64

/* Reads one request head into buf and parses it into req (its strings
 * point into buf).  0, or a negative errno (-EPROTO: not HTTP). */
static int upgrade_request(tide_stream *s, char *buf, tide_http_header *h, tide_http_request *req)
{
    ssize_t n = tide_stream_readuntil(s, "\r\n\r\n", 4, buf, HEAD_MAX);
    if (n <= 0)
        return n < 0 ? (int)n : -ECONNRESET;
    tide_http_request_init(req, h, MAX_HEADERS);
    if (tide_http_parse_request(buf, (size_t)n, req) != n) {
        static const char bad[] = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
                                  "Content-Length: 0\r\n\r\n";
        tide_stream_write(s, bad, sizeof bad - 1);
        return -EPROTO;
    }
    return 0;
}

static int ws_handler(tide_stream *s, void *arg)
{
    (void)arg;
    char buf[HEAD_MAX];
    tide_http_header h[MAX_HEADERS];
    tide_http_request req;
    tide_ws_opts o;
    tide_ws *ws;
    tide_ws_msg m;
    int rc;

    if (upgrade_request(s, buf, h, &req) < 0)
        return 0;
    tide_ws_opts_init(&o);
    o.max_message = 16 << 20; /* 16 MiB */
    if (tide_ws_accept(s, &req, &o, &ws) < 0)
        return 0; /* the 400/426 answer was written */
    while ((rc = tide_ws_recv(ws, &m)) == 0)
        if (tide_ws_send(ws, m.opcode, m.data, m.len) < 0)
            break;
    /* -EPIPE: the client closed; anything else was answered with its close
     * code already.  tide_ws_close finishes the handshake (bounded). */
    tide_ws_close(ws, TIDE_WS_CLOSE_NORMAL, NULL);
    return 0;
}

struct config {
    const char *host;
    int port;
};

static int server_main(void *arg)
{
    const struct config *cfg = arg;
    tide_server *srv;
    sigset_t stop;
    int rc = tide_start_server(cfg->host, cfg->port, ws_handler, NULL, NULL, &srv);
    if (rc < 0) {
        fprintf(stderr, "ws_echo: cannot listen on %s:%d: %s\n", cfg->host, cfg->port,
                tide_strerror(rc));
        return 1;
    }
    printf("ws_echo: listening on %s:%d\n", cfg->host, tide_server_port(srv));
    fflush(stdout);
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    tide_signal_wait(&stop);
    tide_server_close(srv, TIDE_SERVER_CANCEL);
    printf("ws_echo: stopped\n");
    return 0;
}

static int parse_port(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return (*s && !*end && v >= 0 && v <= 65535) ? (int)v : -1;
}

int main(int argc, char **argv)
{
    struct config cfg = {"127.0.0.1", -1};
    sigset_t stop;
    if (argc == 2) {
        cfg.port = parse_port(argv[1]);
    } else if (argc == 3) {
        cfg.host = argv[1];
        cfg.port = parse_port(argv[2]);
    }
    if (cfg.port < 0) {
        fprintf(stderr, "usage: ws_echo [HOST] PORT\n");
        return 2;
    }
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    return tide_run(server_main, &cfg) == 0 ? 0 : 1;
}
