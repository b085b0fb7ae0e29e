/*
 * echo_client.c -- many concurrent clients for an echo server, checking
 * every byte that comes back.
 *
 *   echo_client [HOST] PORT [CONNECTIONS] [MESSAGES]
 *
 *   echo_client 9000               10 connections x 1000 messages to 127.0.0.1:9000
 *   echo_client ::1 9000 100 50    100 connections x 50 messages to [::1]:9000
 *
 * The first argument is taken as HOST when it is not a plain number.  Each
 * connection is a task that sends MESSAGES messages one after the other (of
 * pseudo-random sizes between 1 and 4096 bytes and contents), reads each
 * echo back in full and compares it with what it sent.  The program prints
 * a summary (round trips per second) and exits with status 0 only if every
 * connection verified every byte.  Run examples/echo_server first.
 *
 * What it shows:
 *   - thousands of clients are just thousands of tasks, each written as a
 *     plain loop (connect, write, read, compare);
 *   - tide_stream_readexactly to read a reply of known size;
 *   - a timeout scope that bounds a whole client (tide_timeout_begin/end);
 *   - tide_gather to wait for all of them.
 */
#include <tide.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define MAX_MESSAGE 4096
#define CLIENT_TIMEOUT_MS 60000  /* a client that takes longer than this fails */
#define CLIENT_STACK (64 * 1024) /* clients need little stack; keep it small */

struct config {
    const char *host;
    int port;
    int connections;
    int messages;
};

/* One client's state and results. */
struct client {
    const struct config *cfg;
    int id;
    unsigned long round_trips;
    unsigned long long bytes; /* sent, and received back */
    int error;                /* 0, or the first negative errno */
    const char *what;         /* the step that failed */
};

/* A tiny deterministic random generator (xorshift32): each client gets its
 * own sequence of sizes and bytes, so a reply that crossed over from another
 * connection would not compare equal. */
static uint32_t rand_next(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Records the first failure of a client. */
static int fail(struct client *c, const char *what, int err)
{
    if (!c->error) {
        c->error = err;
        c->what = what;
    }
    return err;
}

/* The body of a client task. */
static int client_main(void *arg)
{
    struct client *c = arg;
    char out[MAX_MESSAGE], in[MAX_MESSAGE];
    uint32_t rng = 0x9e3779b9u ^ (uint32_t)(c->id * 2654435761u);
    tide_stream *s;
    tide_scope deadline;
    int rc;

    if (!rng)
        rng = 1;
    /* Every suspending call below fails with -ETIMEDOUT once the deadline
     * passes, so a stuck server cannot hang the client forever. */
    tide_timeout_begin(&deadline, CLIENT_TIMEOUT_MS);

    rc = tide_open_connection(c->cfg->host, c->cfg->port, &s);
    if (rc < 0) {
        fail(c, "connect", rc);
        goto out;
    }
    for (int m = 0; m < c->cfg->messages; m++) {
        size_t len = 1 + rand_next(&rng) % MAX_MESSAGE;
        for (size_t i = 0; i < len; i++)
            out[i] = (char)rand_next(&rng);

        ssize_t n = tide_stream_write(s, out, len);
        if (n >= 0)
            n = tide_stream_drain(s);
        if (n < 0) {
            fail(c, "write", (int)n);
            break;
        }
        /* The echo comes back in pieces of whatever size: readexactly
         * collects exactly len bytes (fewer only if the server hung up). */
        n = tide_stream_readexactly(s, in, len);
        if (n < 0) {
            fail(c, "read", (int)n);
            break;
        }
        if ((size_t)n != len) {
            fail(c, "read (server closed the connection)", -ECONNRESET);
            break;
        }
        if (memcmp(in, out, len) != 0) {
            fail(c, "verify (echo differs from what was sent)", -EBADMSG);
            break;
        }
        c->round_trips++;
        c->bytes += len;
    }
    rc = tide_stream_close(s);
    if (rc < 0)
        fail(c, "close", rc);
out:
    if (tide_timeout_end(&deadline) == -ETIMEDOUT)
        c->what = "timed out"; /* the error is -ETIMEDOUT already */
    return c->error;
}

/* The main task: start the clients, wait for all, report. */
static int run_main(void *arg)
{
    const struct config *cfg = arg;
    int n = cfg->connections, failed = 0;
    struct client *clients = calloc((size_t)n, sizeof *clients);
    tide_task **tasks = calloc((size_t)n, sizeof *tasks);
    unsigned long long round_trips = 0, bytes = 0;
    tide_task_opts opts;
    double t0, ms;

    if (!clients || !tasks) {
        fprintf(stderr, "echo_client: out of memory\n");
        return 1;
    }
    tide_task_opts_init(&opts);
    opts.name = "client";
    opts.stack_size = CLIENT_STACK;

    t0 = now_ms();
    for (int i = 0; i < n; i++) {
        clients[i].cfg = cfg;
        clients[i].id = i;
        int rc = tide_create_task_ex(&tasks[i], NULL, client_main, &clients[i], &opts);
        if (rc < 0) {
            fprintf(stderr, "echo_client: cannot start client %d: %s\n", i, tide_strerror(rc));
            n = i; /* wait for the ones started, then fail */
            failed++;
            break;
        }
    }
    /* Each client records its own result; gather's return value (the first
     * failure) is not needed here. */
    (void)tide_gather(tasks, (size_t)n, NULL);
    ms = now_ms() - t0;

    for (int i = 0; i < n; i++) {
        const struct client *c = &clients[i];
        round_trips += c->round_trips;
        bytes += c->bytes;
        if (c->error) {
            if (failed < 10)
                fprintf(stderr, "echo_client: connection %d: %s: %s\n", i, c->what,
                        tide_strerror(c->error));
            failed++;
        }
    }
    printf("echo_client: %d connections x %d messages to %s:%d\n", cfg->connections, cfg->messages,
           cfg->host, cfg->port);
    printf("echo_client: %llu round trips, %.1f MB each way, in %.1f ms: %.0f round trips/s\n",
           round_trips, bytes / 1e6, ms, ms > 0 ? round_trips * 1000.0 / ms : 0.0);
    free(clients);
    free(tasks);
    if (failed) {
        printf("echo_client: FAILED: %d of %d connections did not verify every byte\n", failed,
               cfg->connections);
        return 1;
    }
    printf("echo_client: all %llu messages verified\n", round_trips);
    return 0;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: echo_client [HOST] PORT [CONNECTIONS] [MESSAGES]\n"
            "  CONNECTIONS concurrent clients (default 10) each send MESSAGES messages\n"
            "  (default 1000) of 1..%d bytes to an echo server and check every byte.\n"
            "  HOST defaults to 127.0.0.1.  Exit status 0 only if all were verified.\n",
            MAX_MESSAGE);
    return 2;
}

/* Parses an integer in [min, max]; -1 if s is not one. */
static long parse_int(const char *s, long min, long max)
{
    char *end;
    long v = strtol(s, &end, 10);
    return (*s && !*end && v >= min && v <= max) ? v : -1;
}

/* Each connection needs an fd: allow as many as the hard limit permits. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    struct config cfg = {"127.0.0.1", 0, 10, 1000};
    int i = 1, rc;

    if (argc < 2)
        return usage();
    if (parse_int(argv[1], 0, 65535) < 0) /* not a number: it is the host */
        cfg.host = argv[i++];
    if (i >= argc || (cfg.port = (int)parse_int(argv[i++], 1, 65535)) < 0)
        return usage();
    if (i < argc && (cfg.connections = (int)parse_int(argv[i++], 1, 100000)) < 0)
        return usage();
    if (i < argc && (cfg.messages = (int)parse_int(argv[i++], 0, 100000000)) < 0)
        return usage();
    if (i < argc)
        return usage();

    raise_fd_limit();
    rc = tide_run(run_main, &cfg);
    if (rc < 0) {
        fprintf(stderr, "echo_client: %s\n", tide_strerror(rc));
        return 1;
    }
    return rc;
}
