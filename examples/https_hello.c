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
 * The only differences from http_hello: tide_start_tls_server instead of
 * tide_start_server (each connection's stream does a TLS handshake, within
 * 10 s, before the handler runs; ALPN offers http/1.1), and the URL.  The
 * handler is the same code: every stream call works over TLS as over TCP.
 * Session tickets are on, so a client that reconnects resumes.
 *
 * Every request (any method, any path) gets "Hello, world!\n" (HEAD gets
 * the headers only).  It is small, but a real client can rely on it:
 *   - keep-alive: HTTP/1.1 connections stay open for the next request
 *     unless the client sends "Connection: close"; HTTP/1.0 ones close
 *     unless it sends "Connection: keep-alive".  Pipelined requests work,
 *     since each is read from the same buffered stream in turn.
 *   - every response carries Content-Length, so the client knows where it
 *     ends;
 *   - a request body announced with Content-Length is read and discarded;
 *   - a malformed request line gets 400 Bad Request, a too long one 414, too
 *     many or too long header lines 431, "Transfer-Encoding" 501; then the
 *     connection is closed;
 *   - an idle connection is closed after IDLE_TIMEOUT_MS, and a request
 *     must arrive in full within REQUEST_TIMEOUT_MS (timeout scopes);
 *   - a client that pipelines requests but never reads the responses is
 *     dropped once nothing could be written to it for WRITE_TIMEOUT_MS
 *     (the server's write timeout, which bounds drain and the flush at
 *     close alike).
 *
 * The parsing is tide_stream_readline, one line at a time, until the blank
 * line that ends the headers.
 */
#include <tide.h>
#include <tide/tls.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_LINE 8192            /* longest request or header line */
#define MAX_HEADERS 100          /* most header lines in one request */
#define MAX_BODY (1024 * 1024)   /* largest request body we read (and discard) */
#define IDLE_TIMEOUT_MS 30000    /* keep-alive: wait this long for the next request */
#define REQUEST_TIMEOUT_MS 10000 /* a request must arrive in full within this */
#define WRITE_TIMEOUT_MS 10000   /* drop a client that reads nothing for this long */

static const char BODY[] = "Hello, world!\n";

struct stats {
    unsigned long connections, requests, errors;
};

/* What we learn from one request. */
struct request {
    char method[16];
    int minor;      /* HTTP/1.<minor> */
    int keep_alive; /* the connection stays open after the response */
    long content_length;
    int chunked;
};

/* Queues a complete response (one write: headers and body together).  An
 * error here is sticky: the next drain reports it. */
static void respond(tide_stream *s, int status, const char *reason, const char *body, int head_only,
                    int keep_alive)
{
    char msg[512];
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 %d %s\r\n"
                     "Server: tide\r\n"
                     "Content-Type: text/plain\r\n"
                     "Content-Length: %zu\r\n"
                     "Connection: %s\r\n"
                     "\r\n"
                     "%s",
                     status, reason, strlen(body), keep_alive ? "keep-alive" : "close",
                     head_only ? "" : body);
    (void)tide_stream_write(s, msg, (size_t)n);
}

/* Parses "METHOD SP TARGET SP HTTP/1.x": 0, or -1 if malformed. */
static int parse_request_line(char *line, struct request *rq)
{
    char *method = line, *target, *version;

    target = strchr(method, ' ');
    if (!target || target == method || (size_t)(target - method) >= sizeof rq->method)
        return -1;
    *target++ = '\0';
    version = strchr(target, ' ');
    if (!version || version == target)
        return -1;
    *version++ = '\0';
    for (char *p = method; *p; p++) /* a method is a token of letters */
        if ((*p < 'A' || *p > 'Z') && (*p < 'a' || *p > 'z'))
            return -1;
    if (strncmp(version, "HTTP/1.", 7) != 0 || (version[7] != '0' && version[7] != '1') ||
        version[8] != '\0')
        return -1;
    strcpy(rq->method, method);
    rq->minor = version[7] - '0';
    rq->keep_alive = rq->minor == 1; /* the default of each version */
    return 0;
}

/* Looks at one "Name: value" header line: -1 if malformed. */
static int parse_header(char *line, struct request *rq)
{
    char *colon = strchr(line, ':'), *value, *end;

    if (!colon || colon == line)
        return -1;
    *colon = '\0';
    for (char *p = line; *p; p++)
        if (*p == ' ' || *p == '\t') /* no space in names, nor before the colon */
            return -1;
    value = colon + 1;
    value += strspn(value, " \t");
    end = value + strlen(value);
    while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
        *--end = '\0';

    if (!strcasecmp(line, "Connection")) {
        /* A list of tokens, e.g. "keep-alive, Upgrade". */
        if (strcasestr(value, "close"))
            rq->keep_alive = 0;
        else if (strcasestr(value, "keep-alive"))
            rq->keep_alive = 1;
    } else if (!strcasecmp(line, "Content-Length")) {
        char *e;
        long v = strtol(value, &e, 10);
        if (e == value || *e || v < 0 || (rq->content_length >= 0 && v != rq->content_length))
            return -1;
        rq->content_length = v;
    } else if (!strcasecmp(line, "Transfer-Encoding")) {
        rq->chunked = 1;
    }
    return 0;
}

/* Reads one line into buf and strips its "\r\n" (or "\n").  Returns the
 * length; -1 at end of file or on an incomplete line; -2 if the line is too
 * long; another negative errno on errors (cancelled, timed out, reset). */
static ssize_t read_line(tide_stream *s, char *buf, size_t cap)
{
    ssize_t n = tide_stream_readline(s, buf, cap);
    if (n == -EMSGSIZE || n == -ENOBUFS)
        return -2;
    if (n == 0 || (n > 0 && buf[n - 1] != '\n'))
        return -1; /* the client hung up, maybe in the middle of a line */
    if (n < 0)
        return n;
    buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = '\0';
    return n;
}

/* Reads and throws away a request body of len bytes. */
static int discard(tide_stream *s, long len)
{
    char sink[1024];
    while (len > 0) {
        ssize_t n = tide_stream_read(s, sink, len < (long)sizeof sink ? (size_t)len : sizeof sink);
        if (n <= 0)
            return -1;
        len -= n;
    }
    return 0;
}

/* Serves one request.  1: the connection stays open for another; 0: close
 * it (the client asked, or we gave an error and cannot trust the rest). */
static int serve_one(tide_stream *s, struct stats *st, char *line)
{
    struct request rq = {.content_length = -1};
    tide_scope idle, whole;
    ssize_t n;
    int headers = 0, rc;

    /* Wait for the request line, at most IDLE_TIMEOUT_MS.  Browsers send
     * empty lines between requests at times; skip a few (RFC 9112, 2.2). */
    tide_timeout_begin(&idle, IDLE_TIMEOUT_MS);
    do
        n = read_line(s, line, MAX_LINE + 2);
    while (n == 0 && ++headers < 4);
    tide_timeout_end(&idle);
    if (n == -2) {
        respond(s, 414, "URI Too Long", "request line too long\n", 0, 0);
        goto fail;
    }
    if (n <= 0)
        return 0; /* hung up, idle too long, cancelled: close quietly */
    if (parse_request_line(line, &rq) < 0) {
        respond(s, 400, "Bad Request", "malformed request line\n", 0, 0);
        goto fail;
    }

    /* The rest of the request must come within REQUEST_TIMEOUT_MS. */
    tide_timeout_begin(&whole, REQUEST_TIMEOUT_MS);
    for (headers = 0;; headers++) {
        n = read_line(s, line, MAX_LINE + 2);
        if (n == 0)
            break; /* the blank line: end of the headers */
        if (n == -2 || (n > 0 && headers == MAX_HEADERS)) {
            respond(s, 431, "Request Header Fields Too Large", "headers too large\n", 0, 0);
            break;
        }
        if (n < 0)
            break;
        if (parse_header(line, &rq) < 0) {
            respond(s, 400, "Bad Request", "malformed header\n", 0, 0);
            n = -1;
            break;
        }
    }
    if (n == 0 && rq.chunked) {
        respond(s, 501, "Not Implemented", "chunked requests are not supported\n", 0, 0);
        n = -1;
    } else if (n == 0 && rq.content_length > MAX_BODY) {
        respond(s, 413, "Content Too Large", "request body too large\n", 0, 0);
        n = -1;
    } else if (n == 0 && rq.content_length > 0 && discard(s, rq.content_length) < 0) {
        n = -1;
    }
    tide_timeout_end(&whole);
    if (n != 0)
        goto fail;

    respond(s, 200, "OK", BODY, !strcmp(rq.method, "HEAD"), rq.keep_alive);
    st->requests++;
    /* Respect backpressure: a client that pipelines requests but does not
     * read responses makes this task wait, and only this one; after
     * WRITE_TIMEOUT_MS without progress drain fails (-ETIMEDOUT) and the
     * connection is dropped. */
    rc = tide_stream_drain(s);
    return rc == 0 && rq.keep_alive;

fail:
    st->errors++;
    return 0; /* the server flushes the error response and closes */
}

/* The connection handler, one task per connection: requests in turn. */
static int http_handler(tide_stream *s, void *arg)
{
    struct stats *st = arg;
    /* On the heap, not the stack: connection tasks keep small stacks. */
    char *line = malloc(MAX_LINE + 2);

    st->connections++;
    if (line)
        while (serve_one(s, st, line))
            ;
    free(line);
    return 0;
}

struct config {
    const char *host;
    int port;
    const char *cert, *key;
};

static int http_main(void *arg)
{
    const struct config *cfg = arg;
    struct stats st = {0, 0, 0};
    tide_server_opts opts;
    tide_tls_opts tls;
    tide_server *srv;
    sigset_t stop;
    int rc, sig;

    tide_server_opts_init(&opts);
    opts.backlog = 4096;         /* load generators open many connections at once */
    opts.stack_size = 64 * 1024; /* a connection needs little stack */
    opts.write_timeout_ms = WRITE_TIMEOUT_MS; /* drain and close give up on a non-reader */
    tide_stream_opts_init(&opts.stream);
    opts.stream.limit = MAX_LINE + 2; /* readline fails past a line this long */
    tide_tls_opts_init(&tls);
    tls.cert_file = cfg->cert;
    tls.key_file = cfg->key;
    tls.alpn = "http/1.1";
    rc = tide_start_tls_server(cfg->host, cfg->port, http_handler, &st, &opts, &tls, &srv);
    if (rc < 0) {
        fprintf(stderr, "https_hello: cannot listen on %s:%d: %s\n", cfg->host, cfg->port,
                tide_strerror(rc));
        return 1;
    }
    printf("https_hello: listening on https://%s:%d/ (Ctrl-C to stop)\n", cfg->host,
           tide_server_port(srv));
    fflush(stdout);

    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sig = tide_signal_wait(&stop);

    rc = tide_server_close(srv, TIDE_SERVER_CANCEL);
    printf("https_hello: %s: %lu connections, %lu requests answered, %lu bad requests\n",
           sig > 0 ? strsignal(sig) : tide_strerror(sig), st.connections, st.requests, st.errors);
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
