/*
 * demo.c -- an echo server and a thousand clients in one process, on one
 * thread, checking every byte.
 *
 *   demo [--quick] [--clients N] [--messages M] [--help]
 *
 * tide is asyncio for C: one thread runs an event loop, and the loop runs
 * many "tasks" (stackful coroutines).  Code in a task reads like blocking
 * code -- connect, write, read, compare -- but when a call would block, only
 * that task waits and the loop runs the others.
 *
 * This program starts a TCP echo server on 127.0.0.1 (a free port), then
 * 1000 client tasks that connect to it at the same time.  Each client sends
 * 100 messages one after the other, of sizes between 1 and 4096 bytes,
 * filled from its own pseudo-random sequence, and checks that each echo is
 * exactly what it sent.  The server runs one task per connection too, so
 * about 2000 tasks are alive at once, each with a 32 KiB stack.  At the end
 * it prints a one-screen report and "all checks passed" -- exit status 0 --
 * or the checks that failed (exit status 1).
 *
 *   --quick         200 clients x 20 messages (what ctest runs)
 *   --clients N     number of clients (default 1000)
 *   --messages M    messages per client (default 100)
 *
 * The same pieces, as separate programs: echo_server.c, echo_client.c.
 * A tour of tasks, timeouts and cancellation without the network:
 * tasks_tour.c.
 */
#include <tide.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define MAX_MESSAGE 4096        /* messages are 1..MAX_MESSAGE bytes */
#define TASK_STACK (32 * 1024)  /* clients and connection handlers need little */
#define CLIENT_TIMEOUT_MS 30000 /* a client that takes longer fails */

/* ------------------------------------------------------------ utilities */

/* Every check goes through CHECK(): a failure is printed at once, with its
 * line, and counted; main() turns the count into the exit status. */
static int g_failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            g_failures++;                                                                          \
            fprintf(stderr, "demo.c:%d: CHECK FAILED: %s: ", __LINE__, #cond);                     \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

/* A high-resolution stopwatch for the report (tide_now() counts whole
 * milliseconds). */
static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A tiny deterministic random generator (xorshift32).  Each client has its
 * own seed, so its sizes and bytes differ from every other client's: an echo
 * delivered to the wrong connection would not compare equal. */
static uint32_t rand_next(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

/* --------------------------------------------------------------- server */

struct server_stats {
    unsigned long accepted, active, peak;
    unsigned long long bytes;
};

/* The echo handler: tide_start_server runs it in a task of its own for each
 * connection, and closes the stream when it returns. */
static int echo_handler(tide_stream *s, void *arg)
{
    struct server_stats *st = arg;
    char buf[4096]; /* small: the task's whole stack is TASK_STACK */

    st->accepted++;
    if (++st->active > st->peak)
        st->peak = st->active;
    for (;;) {
        ssize_t n = tide_stream_read(s, buf, sizeof buf); /* 0: client done */
        if (n <= 0)
            break;
        /* write never waits; drain waits only if the client reads slowly. */
        if (tide_stream_write(s, buf, (size_t)n) < 0 || tide_stream_drain(s) < 0)
            break;
        st->bytes += (unsigned long long)n;
    }
    st->active--;
    return 0;
}

/* -------------------------------------------------------------- clients */

/* What the run adds up to, for the report. */
struct result {
    double ms, last_connect_ms;
    unsigned long long messages, bytes;
    int failed_clients;
    int close_rc;
    size_t conns_at_close;
    ssize_t left_over;
};

struct run; /* below */

struct client {
    struct run *run;
    int id;
    int messages;             /* echoed and verified */
    unsigned long long bytes; /* in those messages */
    double connected_ms;      /* when its connection was up, from the start */
    int error;                /* 0, or the first failure (negative errno) */
    const char *what;         /* the step that failed */
};

struct run {
    int clients, messages, quick;
    int port;
    double t0;
    ssize_t peak_tasks; /* live tasks, at most */
    struct client *c;
    struct server_stats srv;
    struct result res;
};

static int fail(struct client *c, const char *what, int err)
{
    if (!c->error) {
        c->error = err;
        c->what = what;
    }
    return err;
}

/* One client: connect, then send each message and check its echo. */
static int client_main(void *arg)
{
    struct client *c = arg;
    struct run *run = c->run;
    uint32_t rng = 2463534242u + 7919u * (uint32_t)c->id; /* never 0 */
    tide_scope deadline;
    tide_stream *s = NULL;
    ssize_t live, n;
    /* The message buffers live on the heap: with 32 KiB stacks, 8 KiB of
     * buffers would be a large share. */
    char *out = malloc(MAX_MESSAGE), *in = malloc(MAX_MESSAGE);

    if (!out || !in) {
        fail(c, "malloc", -ENOMEM);
        goto done;
    }
    tide_timeout_begin(&deadline, CLIENT_TIMEOUT_MS);

    n = tide_open_connection("127.0.0.1", run->port, &s);
    if (n < 0) {
        fail(c, "connect", (int)n);
        goto out;
    }
    c->connected_ms = now_ms() - run->t0;
    live = tide_task_list(NULL, NULL, 0); /* how many tasks are alive now */
    if (live > run->peak_tasks)
        run->peak_tasks = live;

    for (int m = 0; m < run->messages; m++) {
        size_t len = 1 + rand_next(&rng) % MAX_MESSAGE;
        for (size_t i = 0; i < len; i++)
            out[i] = (char)rand_next(&rng);

        n = tide_stream_write(s, out, len); /* queued if the socket is full */
        if (n >= 0)
            n = tide_stream_drain(s); /* wait if too much is queued */
        if (n < 0) {
            fail(c, "write", (int)n);
            break;
        }
        n = tide_stream_readexactly(s, in, len); /* all len bytes, or EOF */
        if (n < 0) {
            fail(c, "read", (int)n);
            break;
        }
        if ((size_t)n != len) {
            fail(c, "read: the server hung up", -ECONNRESET);
            break;
        }
        if (memcmp(in, out, len) != 0) {
            fail(c, "verify: the echo differs", -EBADMSG);
            break;
        }
        c->messages++;
        c->bytes += len;
    }
    n = tide_stream_close(s); /* the server's handler then reads EOF */
    if (n < 0)
        fail(c, "close", (int)n);
out:
    if (tide_timeout_end(&deadline) == -ETIMEDOUT)
        c->what = "timed out";
done:
    free(out);
    free(in);
    return c->error;
}

/* ----------------------------------------------------------------- main */

/* The first task: tide_run() runs it, and returns its result. */
static int demo_main(void *arg)
{
    struct run *run = arg;
    struct result *res = &run->res;
    tide_server_opts opts;
    tide_server *srv;
    tide_task_opts to;
    tide_task **tasks;
    int rc;

    /* The server: port 0 asks the kernel for a free port. */
    tide_server_opts_init(&opts);
    opts.backlog = 4096;          /* all clients connect at once */
    opts.stack_size = TASK_STACK; /* of each connection's task */
    rc = tide_start_server("127.0.0.1", 0, echo_handler, &run->srv, &opts, &srv);
    if (rc < 0) {
        fprintf(stderr, "demo: cannot start the server: %s\n", tide_strerror(rc));
        return 1;
    }
    run->port = tide_server_port(srv);

    /* The clients: one task each, small stacks. */
    tasks = calloc((size_t)run->clients, sizeof *tasks);
    if (!tasks) {
        fprintf(stderr, "demo: out of memory\n");
        tide_server_close(srv, TIDE_SERVER_CANCEL);
        return 1;
    }
    tide_task_opts_init(&to);
    to.name = "client";
    to.stack_size = TASK_STACK;
    run->t0 = now_ms();
    for (int i = 0; i < run->clients; i++) {
        run->c[i].run = run;
        run->c[i].id = i;
        rc = tide_create_task_ex(&tasks[i], NULL, client_main, &run->c[i], &to);
        if (rc < 0) {
            fprintf(stderr, "demo: cannot start client %d: %s\n", i, tide_strerror(rc));
            exit(1);
        }
    }
    /* Wait for all of them.  Each records its own result and error. */
    (void)tide_gather(tasks, (size_t)run->clients, NULL);
    res->ms = now_ms() - run->t0;
    free(tasks);

    /* The clients have closed their connections; the server's handlers
     * see end-of-file and return.  Give them a moment, then close the
     * server gracefully: it waits for any handler still running. */
    for (int i = 0; i < 100 && tide_server_connections(srv) > 0; i++)
        tide_sleep(1);
    res->conns_at_close = tide_server_connections(srv);
    res->close_rc = tide_server_close(srv, TIDE_SERVER_WAIT);

    /* Only this task should be left. */
    res->left_over = tide_task_list(NULL, NULL, 0) - 1;
    return 0;
}

/* Each connection takes two fds in this process (client and server side):
 * raise the soft limit to the hard one, and fit the run into it. */
static void fit_fd_limit(struct run *run)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
        (void)getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)run->clients * 2 + 64 > rl.rlim_cur) {
        int fit = rl.rlim_cur > 100 ? (int)((rl.rlim_cur - 64) / 2) : 10;
        printf("(the fd limit is %llu: running %d clients instead of %d)\n",
               (unsigned long long)rl.rlim_cur, fit, run->clients);
        run->clients = fit;
    }
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: demo [--quick] [--clients N] [--messages M] [--help]\n"
            "  An echo server and N clients (default 1000) in one process: each client\n"
            "  sends M messages (default 100) of 1..%d bytes and checks every byte of\n"
            "  the echo.  Exit status 0 only if every check passed.\n"
            "  --quick    200 clients x 20 messages, as ctest runs it\n",
            MAX_MESSAGE);
}

static void print_report(const struct run *run, const struct result *res)
{
    double s = res->ms / 1000.0;

    printf("tide %d.%d.%d demo%s: an echo server and %d clients in one process, one thread\n\n",
           TIDE_VERSION_MAJOR, TIDE_VERSION_MINOR, TIDE_VERSION_PATCH, run->quick ? " --quick" : "",
           run->clients);
    printf("clients   %d connections to 127.0.0.1:%d, all up after %.0f ms\n", run->clients,
           run->port, res->last_connect_ms);
    printf("          %d messages each, 1..%d bytes, from a per-client random sequence\n",
           run->messages, MAX_MESSAGE);
    printf("          %llu round trips, %.1f MB sent and the same %.1f MB checked back\n",
           res->messages, res->bytes / 1e6, res->bytes / 1e6);
    printf("          %d clients failed\n", res->failed_clients);
    printf("time      %.0f ms: %.0f round trips/s, %.1f MB/s each way\n", res->ms,
           s > 0 ? res->messages / s : 0.0, s > 0 ? res->bytes / 1e6 / s : 0.0);
    printf("server    %lu connections accepted, %lu at once at most, %.1f MB echoed\n",
           run->srv.accepted, run->srv.peak, run->srv.bytes / 1e6);
    printf("          closed gracefully (%s) with %zu handlers still running\n",
           res->close_rc == 0 ? "ok" : tide_strerror(res->close_rc), res->conns_at_close);
    printf("tasks     %zd alive at the peak, %d KiB stacks; %zd left over at the end\n\n",
           run->peak_tasks, TASK_STACK / 1024, res->left_over);
}

int main(int argc, char **argv)
{
    static struct run the_run;
    struct run *run = &the_run;
    struct result *res = &run->res;
    int clients = 1000, messages = 100, quick = 0, rc;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            quick = 1;
            clients = 200;
            messages = 20;
        } else if (!strcmp(argv[i], "--clients") && i + 1 < argc) {
            clients = atoi(argv[++i]);
            if (clients < 1 || clients > 100000) {
                fprintf(stderr, "demo: --clients must be between 1 and 100000\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--messages") && i + 1 < argc) {
            messages = atoi(argv[++i]);
            if (messages < 0 || messages > 1000000) {
                fprintf(stderr, "demo: --messages must be between 0 and 1000000\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "demo: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }

    run->clients = clients;
    run->messages = messages;
    run->quick = quick;
    fit_fd_limit(run);
    run->c = calloc((size_t)run->clients, sizeof *run->c);
    if (!run->c) {
        fprintf(stderr, "demo: out of memory\n");
        return 1;
    }

    /* asyncio.run(): everything happens inside this call. */
    rc = tide_run(demo_main, run);
    CHECK(rc == 0, "tide_run returned %d (%s)", rc, tide_strerror(rc));

    /* Add up, and check, what the clients did. */
    for (int i = 0; i < run->clients; i++) {
        const struct client *c = &run->c[i];
        res->messages += (unsigned long long)c->messages;
        res->bytes += c->bytes;
        if (c->connected_ms > res->last_connect_ms)
            res->last_connect_ms = c->connected_ms;
        if (c->error) {
            if (res->failed_clients < 10)
                fprintf(stderr, "demo: client %d: %s: %s\n", i, c->what, tide_strerror(c->error));
            res->failed_clients++;
        }
    }
    CHECK(res->failed_clients == 0, "%d clients failed", res->failed_clients);
    CHECK(res->messages == (unsigned long long)run->clients * (unsigned long long)run->messages,
          "%llu messages verified, expected %d x %d", res->messages, run->clients, run->messages);
    CHECK(run->srv.accepted == (unsigned long)run->clients, "server accepted %lu, expected %d",
          run->srv.accepted, run->clients);
    CHECK(run->srv.bytes == res->bytes, "server echoed %llu bytes, clients got %llu back",
          run->srv.bytes, res->bytes);
    CHECK(res->close_rc == 0, "server close: %s", tide_strerror(res->close_rc));
    CHECK(run->srv.active == 0, "%lu handlers did not finish", run->srv.active);
    CHECK(res->left_over == 0, "%zd tasks left over", res->left_over);

    print_report(run, res);
    free(run->c);
    if (g_failures) {
        printf("%d CHECK(S) FAILED (see above)\n", g_failures);
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}
