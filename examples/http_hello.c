/*
 * http_hello.c -- a minimal HTTP/1.1 server that answers "Hello, world!".
 *
 *   http_hello [HOST] PORT         e.g.  http_hello 8080
 *                                        curl -v http://127.0.0.1:8080/
 *                                        wrk -c 100 -d 5 http://127.0.0.1:8080/
 *
 * HOST defaults to 127.0.0.1; PORT 0 picks a free port (the "listening on"
 * line tells which).  SIGINT or SIGTERM stops it cleanly (exit status 0).
 *
 * Every request (any method, any path) gets "Hello, world!\n" (HEAD gets
 * the headers only).  All of HTTP/1.1 is tide's server (tide_http_serve,
 * include/tide/http.h): keep-alive and pipelining, HTTP/1.0, request
 * bodies (Content-Length or chunked, read and dropped by the server since
 * the handler ignores them), limits answered with 400/413/414/431/501,
 * idle, head and body timeouts, and a write timeout for clients that do
 * not read.  The handler is one call.
 */
#include <tide.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IDLE_TIMEOUT_MS 30000    /* keep-alive: wait this long for the next request */
#define REQUEST_TIMEOUT_MS 10000 /* a request head must arrive in full within this */
#define WRITE_TIMEOUT_MS 10000   /* drop a client that reads nothing for this long */

static const char BODY[] = "Hello, world!\n";
static const tide_http_header HEADERS[] = {{"Content-Type", 12, "text/plain", 10}};

static int hello(tide_http_exchange *x, void *arg)
{
    (void)arg;
    return tide_http_respond(x, 200, HEADERS, 1, BODY, sizeof BODY - 1);
}

struct config {
    const char *host;
    int port;
};

static int http_main(void *arg)
{
    const struct config *cfg = arg;
    tide_http_server_opts opts;
    tide_http_server_stats st;
    tide_http_server *srv;
    sigset_t stop;
    int rc, sig;

    tide_http_server_opts_init(&opts);
    opts.server.backlog = 4096;         /* load generators open many connections at once */
    opts.server.stack_size = 64 * 1024; /* a connection needs little stack */
    opts.server.write_timeout_ms = WRITE_TIMEOUT_MS;
    opts.idle_timeout_ms = IDLE_TIMEOUT_MS;
    opts.head_timeout_ms = REQUEST_TIMEOUT_MS;
    rc = tide_http_serve(cfg->host, cfg->port, hello, NULL, &opts, &srv);
    if (rc < 0) {
        fprintf(stderr, "http_hello: cannot listen on %s:%d: %s\n", cfg->host, cfg->port,
                tide_strerror(rc));
        return 1;
    }
    printf("http_hello: listening on http://%s:%d/ (Ctrl-C to stop)\n", cfg->host,
           tide_http_server_port(srv));
    fflush(stdout);
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sig = tide_signal_wait(&stop);
    tide_http_server_get_stats(srv, &st);
    rc = tide_http_server_close(srv, TIDE_SERVER_CANCEL);
    printf("http_hello: %s: %llu connections, %llu requests answered, %llu bad requests\n",
           sig > 0 ? strsignal(sig) : tide_strerror(sig), (unsigned long long)st.connections,
           (unsigned long long)st.requests, (unsigned long long)st.errors);
    return rc < 0 ? 1 : 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: http_hello [HOST] PORT\n"
                    "  A minimal HTTP/1.1 server answering \"Hello, world!\".  HOST defaults\n"
                    "  to 127.0.0.1; PORT 0 picks a free port.  Stops on SIGINT or SIGTERM.\n");
    return 2;
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
    int rc;

    if (argc == 2) {
        cfg.port = parse_port(argv[1]);
    } else if (argc == 3) {
        cfg.host = argv[1];
        cfg.port = parse_port(argv[2]);
    }
    if (cfg.port < 0)
        return usage();
    /* Keep SIGINT/SIGTERM pending until the main task waits for them. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    rc = tide_run(http_main, &cfg);
    if (rc < 0) {
        fprintf(stderr, "http_hello: %s\n", tide_strerror(rc));
        return 1;
    }
    return rc;
}
