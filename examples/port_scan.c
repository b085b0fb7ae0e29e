/*
 * port_scan.c -- a TCP connect scanner: many connection attempts at once,
 * each with its own timeout.
 *
 *   port_scan [HOST] FIRST-LAST [CONCURRENCY]
 *
 *   port_scan 1-1024               ports 1..1024 of 127.0.0.1, 100 at a time
 *   port_scan localhost 8000-9000 500
 *
 * Scan only machines you are allowed to scan (your own: 127.0.0.1).  HOST
 * defaults to 127.0.0.1; CONCURRENCY (default 100) is how many connection
 * attempts may be in flight at once.  Each attempt gets ATTEMPT_TIMEOUT_MS
 * to complete; a port that neither accepts nor refuses in time is reported
 * as "timed out" (a firewall dropping packets).  The program prints the
 * open ports, then a summary; exit status 0 unless something went wrong
 * (a bad argument: 2; an unexpected error: 1).
 *
 * What it shows:
 *   - a fixed pool of worker tasks pulling work from a shared counter: the
 *     simplest way to bound concurrency (no semaphore needed, since tasks
 *     only switch at tide calls, "next_port++" needs no lock);
 *   - a timeout scope around one operation (TIDE_WITH_TIMEOUT, the "async
 *     with asyncio.timeout()" block of tide/guard.h): every suspending call
 *     inside fails with -ETIMEDOUT once it expires.
 */
#include <tide.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define ATTEMPT_TIMEOUT_MS 500
#define WORKER_STACK (64 * 1024)

struct scan {
    const char *host;
    int first, last, concurrency;
    int next_port;       /* the next port to try: shared by the workers */
    unsigned char *open; /* open[port - first] = 1 if it accepted */
    unsigned long n_open, n_refused, n_timeout, n_other;
    int other_err; /* an example of the "other" errors */
};

/* Tries one port: 1 if it accepted, 0 if not. */
static int probe(struct scan *sc, int port)
{
    int fd = -ETIMEDOUT, rc;

    TIDE_WITH_TIMEOUT(ATTEMPT_TIMEOUT_MS)
        fd = tide_tcp_connect(sc->host, port);

    if (fd >= 0) {
        tide_close(fd); /* we only wanted to know */
        return 1;
    }
    rc = fd;
    if (rc == -ECONNREFUSED)
        sc->n_refused++;
    else if (rc == -ETIMEDOUT)
        sc->n_timeout++;
    else {
        sc->n_other++;
        if (!sc->other_err)
            sc->other_err = rc;
    }
    return 0;
}

/* A worker: takes the next port until none are left. */
static int worker_main(void *arg)
{
    struct scan *sc = arg;

    while (sc->next_port <= sc->last) {
        int port = sc->next_port++;
        if (probe(sc, port)) {
            sc->open[port - sc->first] = 1;
            sc->n_open++;
        }
        if (tide_task_cancelled(tide_current_task()))
            return -ECANCELED;
    }
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int scan_main(void *arg)
{
    struct scan *sc = arg;
    int nports = sc->last - sc->first + 1;
    int nworkers = sc->concurrency < nports ? sc->concurrency : nports;
    tide_task **workers = calloc((size_t)nworkers, sizeof *workers);
    tide_task_opts opts;
    double t0 = now_ms(), ms;
    int rc = 0, shown = 0;

    if (!workers)
        return 1;
    tide_task_opts_init(&opts);
    opts.name = "scanner";
    opts.stack_size = WORKER_STACK;
    for (int i = 0; i < nworkers; i++) {
        rc = tide_create_task_ex(&workers[i], NULL, worker_main, sc, &opts);
        if (rc < 0) {
            fprintf(stderr, "port_scan: cannot start a worker: %s\n", tide_strerror(rc));
            nworkers = i;
            break;
        }
    }
    (void)tide_gather(workers, (size_t)nworkers, NULL);
    ms = now_ms() - t0;
    free(workers);

    printf("port_scan: %s ports %d-%d, %d at a time, %d ms timeout\n", sc->host, sc->first,
           sc->last, sc->concurrency, ATTEMPT_TIMEOUT_MS);
    for (int p = sc->first; p <= sc->last; p++) {
        if (sc->open[p - sc->first]) {
            printf("%s%d", shown++ ? " " : "open: ", p);
        }
    }
    printf("%s", shown ? "\n" : "open: none\n");
    printf("port_scan: %d ports in %.0f ms: %lu open, %lu refused, %lu timed out, %lu other",
           nports, ms, sc->n_open, sc->n_refused, sc->n_timeout, sc->n_other);
    if (sc->n_other)
        printf(" (e.g. %s)", tide_strerror(sc->other_err));
    printf("\n");
    return rc < 0 ? 1 : 0;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: port_scan [HOST] FIRST-LAST [CONCURRENCY]\n"
            "  Tries to connect to each TCP port FIRST..LAST of HOST (default 127.0.0.1),\n"
            "  at most CONCURRENCY (default 100) at a time, %d ms each; prints the open\n"
            "  ones.  Scan only hosts you are allowed to.\n",
            ATTEMPT_TIMEOUT_MS);
    return 2;
}

/* Parses "FIRST-LAST" (or a single port) into *first and *last. */
static int parse_range(const char *s, int *first, int *last)
{
    char *end;
    long a = strtol(s, &end, 10), b = a;

    if (end == s || a < 1 || a > 65535)
        return -1;
    if (*end == '-') {
        const char *p = end + 1;
        b = strtol(p, &end, 10);
        if (end == p || b < a || b > 65535)
            return -1;
    }
    if (*end)
        return -1;
    *first = (int)a;
    *last = (int)b;
    return 0;
}

/* Every attempt in flight holds an fd: allow as many as the hard limit. */
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
    struct scan sc;
    int i = 1, rc;

    memset(&sc, 0, sizeof sc);
    sc.host = "127.0.0.1";
    sc.concurrency = 100;
    if (argc < 2)
        return usage();
    /* The first argument is the host unless it is already a port range. */
    if (parse_range(argv[1], &sc.first, &sc.last) < 0)
        sc.host = argv[i++];
    if (i >= argc || parse_range(argv[i++], &sc.first, &sc.last) < 0)
        return usage();
    if (i < argc) {
        char *end;
        long c = strtol(argv[i++], &end, 10);
        if (*end || c < 1 || c > 10000)
            return usage();
        sc.concurrency = (int)c;
    }
    if (i < argc)
        return usage();

    sc.next_port = sc.first;
    sc.open = calloc((size_t)(sc.last - sc.first + 1), 1);
    if (!sc.open)
        return 1;
    raise_fd_limit();
    rc = tide_run(scan_main, &sc);
    free(sc.open);
    if (rc < 0) {
        fprintf(stderr, "port_scan: %s\n", tide_strerror(rc));
        return 1;
    }
    return rc;
}
