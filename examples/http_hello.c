/*
 * http_hello.c -- a minimal HTTP/1.1 server that answers "Hello, world!".
 *
 *   http_hello [-j LOOPS] [HOST] PORT   e.g.  http_hello 8080
 *                                             curl -v http://127.0.0.1:8080/
 *                                             wrk -c 100 -d 5 http://127.0.0.1:8080/
 *
 * HOST defaults to 127.0.0.1; PORT 0 picks a free port (the "listening on"
 * line tells which).  SIGINT or SIGTERM stops it cleanly (exit status 0).
 * -j LOOPS runs that many loops, one per thread (tide_multi_run; 0: one per
 * CPU the process may use), each with its own listening socket on the same
 * port (SO_REUSEPORT: the kernel spreads the connections); the default is
 * one loop.
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

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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
    unsigned loops; /* 1: tide_run; otherwise tide_multi_run (0: one per CPU) */
};

/* The loops' totals, added by each loop when it stops. */
static pthread_mutex_t g_stats_lock = PTHREAD_MUTEX_INITIALIZER;
static tide_http_server_stats g_total;
static int g_sig; /* what stopped the server: a signal number, or an error */
static int g_failed; /* a loop could not listen, or its close failed */

static int http_main(void *arg)
{
    const struct config *cfg = arg;
    tide_http_server_opts opts;
    tide_http_server_stats st;
    tide_http_server *srv;
    sigset_t stop;
    int rc, sig, index = tide_multi_index();

    tide_http_server_opts_init(&opts);
    opts.server.backlog = 4096;         /* load generators open many connections at once */
    opts.server.stack_size = 64 * 1024; /* a connection needs little stack */
    opts.server.write_timeout_ms = WRITE_TIMEOUT_MS;
    opts.server.reuseport = cfg->loops != 1;
    opts.idle_timeout_ms = IDLE_TIMEOUT_MS;
    opts.head_timeout_ms = REQUEST_TIMEOUT_MS;
    rc = tide_http_serve(cfg->host, cfg->port, hello, NULL, &opts, &srv);
    if (rc < 0) {
        fprintf(stderr, "http_hello: cannot listen on %s:%d: %s\n", cfg->host, cfg->port,
                tide_strerror(rc));
        g_failed = 1;
        if (index >= 0)
            tide_multi_stop();
        return 1;
    }
    if (index <= 0) { /* tide_run (-1) or loop 0: the one that waits for the signal */
        if (index == 0)
            printf("http_hello: listening on http://%s:%d/ (%u loops; Ctrl-C to stop)\n",
                   cfg->host, tide_http_server_port(srv), tide_multi_count());
        else
            printf("http_hello: listening on http://%s:%d/ (Ctrl-C to stop)\n", cfg->host,
                   tide_http_server_port(srv));
        fflush(stdout);
        sigemptyset(&stop);
        sigaddset(&stop, SIGINT);
        sigaddset(&stop, SIGTERM);
        sig = tide_signal_wait(&stop);
        if (index == 0)
            tide_multi_stop(); /* cancels the other loops' mains */
    } else {
        tide_event never; /* until tide_multi_stop cancels this main */
        tide_event_init(&never);
        sig = tide_event_wait(&never);
    }
    {
        tide_scope sh; /* the close must finish though this task was cancelled */
        tide_shield_begin(&sh);
        tide_http_server_get_stats(srv, &st);
        rc = tide_http_server_close(srv, TIDE_SERVER_CANCEL);
        tide_shield_end(&sh);
    }
    pthread_mutex_lock(&g_stats_lock);
    g_total.connections += st.connections;
    g_total.requests += st.requests;
    g_total.errors += st.errors;
    pthread_mutex_unlock(&g_stats_lock);
    if (index <= 0)
        g_sig = sig;
    if (rc < 0)
        g_failed = 1;
    return rc < 0 ? 1 : 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: http_hello [-j LOOPS] [HOST] PORT\n"
                    "  A minimal HTTP/1.1 server answering \"Hello, world!\".  HOST defaults\n"
                    "  to 127.0.0.1; PORT 0 picks a free port.  -j LOOPS: that many loops,\n"
                    "  one per thread, sharing the port (0: one per CPU).  Stops on SIGINT or\n"
                    "  SIGTERM.\n");
    return 2;
}

static int parse_port(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    return (*s && !*end && v >= 0 && v <= 65535) ? (int)v : -1;
}

/* Port 0 with several loops: every loop must listen on the same port, so
 * one is picked first by binding a socket with SO_REUSEPORT (bound, not
 * listening: no connection goes to it), kept until the loops stopped. */
static int pick_port(const char *host, int *probe)
{
    struct sockaddr_in sa;
    int one = 1, port;

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    *probe = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (*probe < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
        setsockopt(*probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(*probe, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
        bind(*probe, (struct sockaddr *)&sa, sizeof sa) < 0 || (port = tide_sock_port(*probe)) <= 0)
        return -1;
    return port;
}

int main(int argc, char **argv)
{
    struct config cfg = {"127.0.0.1", -1, 1};
    sigset_t stop;
    int rc, i = 1, probe = -1;

    if (argc > 2 && strcmp(argv[1], "-j") == 0) {
        char *end;
        long j = strtol(argv[2], &end, 10);
        if (!*argv[2] || *end || j < 0 || j > TIDE_MULTI_MAX_LOOPS)
            return usage();
        cfg.loops = (unsigned)j;
        i = 3;
    }
    if (argc - i == 1) {
        cfg.port = parse_port(argv[i]);
    } else if (argc - i == 2) {
        cfg.host = argv[i];
        cfg.port = parse_port(argv[i + 1]);
    }
    if (cfg.port < 0)
        return usage();
    if (cfg.loops != 1 && cfg.port == 0 && (cfg.port = pick_port(cfg.host, &probe)) < 0) {
        fprintf(stderr, "http_hello: cannot pick a port on %s (give one)\n", cfg.host);
        return 1;
    }
    /* Keep SIGINT/SIGTERM pending until the main task (loop 0's) waits for
     * them: every thread tide_multi_run starts inherits this mask. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    if (cfg.loops == 1) {
        rc = tide_run(http_main, &cfg);
    } else {
        tide_multi_opts mo;
        tide_multi_opts_init(&mo);
        mo.loops = cfg.loops;
        rc = tide_multi_run(http_main, &cfg, &mo);
    }
    if (probe >= 0)
        close(probe);
    if (rc < 0) {
        fprintf(stderr, "http_hello: %s\n", tide_strerror(rc));
        return 1;
    }
    if (g_failed && !g_total.connections)
        return 1; /* could not listen: said so already */
    printf("http_hello: %s: %llu connections, %llu requests answered, %llu bad requests\n",
           g_sig > 0 ? strsignal(g_sig) : tide_strerror(g_sig),
           (unsigned long long)g_total.connections, (unsigned long long)g_total.requests,
           (unsigned long long)g_total.errors);
    return g_failed;
}
