/*
 * https_hello.c -- examples/http_hello.c over TLS: a minimal HTTP/1.1 server
 * that answers "Hello, world!", with the same behaviour and output.
 *
 *   https_hello [HOST] PORT --cert FILE --key FILE
 *       e.g.  https_hello 8443 --cert server.pem --key server.key
 *             curl --cacert ca.pem https://localhost:8443/
 *             wrk -c 100 -d 5 https://127.0.0.1:8443/
 *
 * FILE: PEM, the certificate chain (leaf first) and its private key.  A
 * throw-away pair for trying it out:
 *   openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
 *       -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
 *       -days 30 -keyout server.key -out server.pem
 *   (then curl --cacert server.pem ...)
 *
 * HOST defaults to 127.0.0.1; PORT 0 picks a free port (the "listening on"
 * line tells which).  SIGINT or SIGTERM stops it cleanly (exit status 0).
 *
 * The only differences from http_hello: a TLS context (tide_tls_ctx_new,
 * ALPN http/1.1, session tickets on) in the server's options, so each
 * connection does a TLS handshake (within 10 s) before its first request;
 * and the URL.  The handler is the same code.
 */
#include <tide.h>
#include <tide/tls.h>

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
    const char *cert, *key;
};

static int http_main(void *arg)
{
    const struct config *cfg = arg;
    tide_http_server_opts opts;
    tide_http_server_stats st;
    tide_http_server *srv;
    tide_tls_opts tls;
    tide_tls_ctx *ctx;
    sigset_t stop;
    int rc, sig;

    tide_tls_opts_init(&tls);
    tls.cert_file = cfg->cert;
    tls.key_file = cfg->key;
    tls.alpn = "http/1.1";
    rc = tide_tls_ctx_new(&ctx, TIDE_TLS_SERVER, &tls);
    if (rc < 0) {
        fprintf(stderr, "https_hello: %s / %s: %s\n", cfg->cert, cfg->key, tide_strerror(rc));
        return 1;
    }
    tide_http_server_opts_init(&opts);
    opts.server.backlog = 4096;         /* load generators open many connections at once */
    opts.server.stack_size = 64 * 1024; /* a connection needs little stack */
    opts.server.write_timeout_ms = WRITE_TIMEOUT_MS;
    opts.idle_timeout_ms = IDLE_TIMEOUT_MS;
    opts.head_timeout_ms = REQUEST_TIMEOUT_MS;
    opts.tls = ctx;
    rc = tide_http_serve(cfg->host, cfg->port, hello, NULL, &opts, &srv);
    tide_tls_ctx_free(ctx); /* the server keeps its own reference */
    if (rc < 0) {
        fprintf(stderr, "https_hello: cannot listen on %s:%d: %s\n", cfg->host, cfg->port,
                tide_strerror(rc));
        return 1;
    }
    printf("https_hello: listening on https://%s:%d/ (Ctrl-C to stop)\n", cfg->host,
           tide_http_server_port(srv));
    fflush(stdout);
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sig = tide_signal_wait(&stop);
    tide_http_server_get_stats(srv, &st);
    rc = tide_http_server_close(srv, TIDE_SERVER_CANCEL);
    printf("https_hello: %s: %llu connections, %llu requests answered, %llu bad requests\n",
           sig > 0 ? strsignal(sig) : tide_strerror(sig), (unsigned long long)st.connections,
           (unsigned long long)st.requests, (unsigned long long)st.errors);
    return rc < 0 ? 1 : 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: https_hello [HOST] PORT --cert FILE --key FILE\n"
                    "  A minimal HTTPS (HTTP/1.1 over TLS) server answering \"Hello, world!\".\n"
                    "  FILE: PEM certificate chain and private key.  HOST defaults to\n"
                    "  127.0.0.1; PORT 0 picks a free port.  Stops on SIGINT or SIGTERM.\n");
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
    struct config cfg = {"127.0.0.1", -1, NULL, NULL};
    const char *pos[2];
    int npos = 0, i;
    sigset_t stop;
    int rc;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--cert") && i + 1 < argc)
            cfg.cert = argv[++i];
        else if (!strcmp(argv[i], "--key") && i + 1 < argc)
            cfg.key = argv[++i];
        else if (argv[i][0] != '-' && npos < 2)
            pos[npos++] = argv[i];
        else
            return usage();
    }
    if (npos == 1) {
        cfg.port = parse_port(pos[0]);
    } else if (npos == 2) {
        cfg.host = pos[0];
        cfg.port = parse_port(pos[1]);
    }
    if (cfg.port < 0 || !cfg.cert || !cfg.key)
        return usage();
    /* Keep SIGINT/SIGTERM pending until the main task waits for them. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    rc = tide_run(http_main, &cfg);
    if (rc < 0) {
        fprintf(stderr, "https_hello: %s\n", tide_strerror(rc));
        return 1;
    }
    return rc;
}
