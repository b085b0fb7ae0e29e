/*
 * echo_server.c -- a TCP echo server: every byte a client sends comes back.
 *
 *   echo_server [HOST] PORT        e.g.  echo_server 9000
 *                                        echo_server 0.0.0.0 9000
 *
 * HOST defaults to 127.0.0.1.  PORT 0 picks a free port; the "listening on"
 * line tells which.  Stop it with Ctrl-C (SIGINT) or SIGTERM: it closes the
 * listener, cancels the open connections, prints its statistics and exits
 * with status 0.  Try it with examples/echo_client, or by hand with
 * "nc 127.0.0.1 9000".
 *
 * What it shows:
 *   - tide_start_server runs a handler in a task of its own for each
 *     connection, over a buffered stream; the handler reads like blocking
 *     code (read, write, drain, repeat).
 *   - tide_stream_drain is the backpressure: a client that sends but does
 *     not read makes its own handler wait, never the others; and the
 *     server's write timeout drops it once nothing could be written to it
 *     for WRITE_TIMEOUT_MS.
 *   - tide_signal_wait turns a signal into an ordinary awaitable event, so
 *     shutdown is plain sequential code in the main task.
 */
#include <tide.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the server counts, for the final report.  There is one thread, so
 * plain counters are safe: tasks only switch at tide calls. */
#define WRITE_TIMEOUT_MS 30000 /* drop a client that reads nothing for this long */

struct stats {
    unsigned long connections; /* accepted so far */
    unsigned long active;      /* open right now */
    unsigned long peak;        /* most open at once */
    unsigned long long bytes;  /* echoed */
};

/* The connection handler: runs in its own task, one per client.  The server
 * closes the stream when the handler returns. */
static int echo_handler(tide_stream *s, void *arg)
{
    struct stats *st = arg;
    char buf[8192];

    st->connections++;
    if (++st->active > st->peak)
        st->peak = st->active;

    for (;;) {
        /* Whatever has arrived, up to sizeof buf; 0 when the client has
         * finished sending, < 0 on an error or when we are cancelled.  The
         * stream reads up to 64 KiB per syscall and serves these 8 KiB
         * reads from its buffer. */
        ssize_t n = tide_stream_read(s, buf, sizeof buf);
        if (n <= 0)
            break;
        /* write queues what the socket cannot take at once and never waits;
         * drain waits if too much is queued (the client reads slowly). */
        if (tide_stream_write(s, buf, (size_t)n) < 0 || tide_stream_drain(s) < 0)
            break;
        st->bytes += (unsigned long long)n;
    }
    st->active--;
    return 0;
}

struct config {
    const char *host;
    int port;
};

/* The main task: start the server, wait for a signal, shut down. */
static int server_main(void *arg)
{
    const struct config *cfg = arg;
    struct stats st = {0, 0, 0, 0};
    tide_server_opts opts;
    tide_server *srv;
    sigset_t stop;
    int rc, sig;

    tide_server_opts_init(&opts); /* defaults: backlog 511, TCP_NODELAY on */
    opts.write_timeout_ms = WRITE_TIMEOUT_MS; /* drain fails with -ETIMEDOUT after it */
    rc = tide_start_server(cfg->host, cfg->port, echo_handler, &st, &opts, &srv);
    if (rc < 0) {
        fprintf(stderr, "echo_server: cannot listen on %s:%d: %s\n", cfg->host, cfg->port,
                tide_strerror(rc));
        return 1;
    }
    printf("echo_server: listening on %s:%d (Ctrl-C to stop)\n", cfg->host, tide_server_port(srv));
    fflush(stdout); /* scripts wait for this line to learn the port */

    /* The server runs in tasks of its own; this task just waits. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sig = tide_signal_wait(&stop);
    if (sig < 0) {
        fprintf(stderr, "echo_server: signal wait failed: %s\n", tide_strerror(sig));
        sig = 0;
    }

    /* Stop accepting, cancel every connection handler and wait for them. */
    unsigned long open_at_stop = st.active;
    rc = tide_server_close(srv, TIDE_SERVER_CANCEL);
    printf("echo_server: %s: %lu connections (%lu at most at once, %lu closed at shutdown), "
           "%llu bytes echoed\n",
           sig ? strsignal(sig) : "stopping", st.connections, st.peak, open_at_stop, st.bytes);
    if (rc < 0) {
        fprintf(stderr, "echo_server: close: %s\n", tide_strerror(rc));
        return 1;
    }
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: echo_server [HOST] PORT\n"
                    "  A TCP echo server.  HOST defaults to 127.0.0.1; PORT 0 picks a free port.\n"
                    "  Stops cleanly on SIGINT or SIGTERM.\n");
    return 2;
}

/* Parses a port number 0..65535; -1 if s is not one. */
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
    if (cfg.port < 0)
        return usage();

    /* Block SIGINT and SIGTERM from the start: a signal that comes before the
     * main task waits for it then stays pending (tide_signal_wait picks it
     * up) instead of killing the process. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, NULL);

    int rc = tide_run(server_main, &cfg);
    if (rc < 0) {
        fprintf(stderr, "echo_server: %s\n", tide_strerror(rc));
        return 1;
    }
    return rc;
}
