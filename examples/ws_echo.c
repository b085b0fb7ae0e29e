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
 * The HTTP server (tide_http_serve) reads and parses the request; the
 * handler upgrades it with tide_ws_upgrade, which answers a request that is
 * no WebSocket handshake itself (426, 405, 400) and keeps that connection
 * alive for more HTTP requests.
 */
#include <tide.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static int ws_handler(tide_http_exchange *x, void *arg)
{
    (void)arg;
    tide_ws_opts o;
    tide_ws *ws;
    tide_ws_msg m;
    int rc;

    tide_ws_opts_init(&o);
    o.max_message = 16 << 20; /* 16 MiB */
    if (tide_ws_upgrade(x, &o, &ws) < 0)
        return 0; /* answered (or the connection is gone) */
    while ((rc = tide_ws_recv(ws, &m)) == 0)
        if (tide_ws_send(ws, m.opcode, m.data, m.len) < 0)
            break;
    /* -EPIPE: the client closed; -ECANCELED: the server is stopping; other
     * errors were answered with their close code already.  tide_ws_close
     * finishes the handshake (shielded, bounded). */
    tide_ws_close(ws, rc == -ECANCELED ? TIDE_WS_CLOSE_GOING_AWAY : TIDE_WS_CLOSE_NORMAL, NULL);
    return 0;
}

struct config {
    const char *host;
    int port;
};

static int server_main(void *arg)
{
    const struct config *cfg = arg;
    tide_http_server *srv;
    sigset_t stop;
    int rc = tide_http_serve(cfg->host, cfg->port, ws_handler, NULL, NULL, &srv);
    if (rc < 0) {
        fprintf(stderr, "ws_echo: cannot listen on %s:%d: %s\n", cfg->host, cfg->port,
                tide_strerror(rc));
        return 1;
    }
    printf("ws_echo: listening on %s:%d\n", cfg->host, tide_http_server_port(srv));
    fflush(stdout);
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    tide_signal_wait(&stop);
    /* Graceful: the upgraded connections' handlers are cancelled and close
     * with 1001 (going away). */
    tide_http_server_close(srv, TIDE_SERVER_WAIT);
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
