/*
 * parallel_fetch.c -- many "fetches" in parallel under one overall deadline.
 *
 *   parallel_fetch [--quick] [--workers N] [--timeout MS] [--step MS]
 *
 * The program starts a small server of its own on 127.0.0.1, port 0 (any
 * free port; loopback only).  The server answers each request line
 * "ID DELAY\n" after DELAY milliseconds with "ID ok\n": a stand-in for a
 * slow remote service.
 *
 * Then N worker tasks "fetch" in parallel: worker i connects, asks for a
 * delay of i*STEP ms, and waits for the answer.  All workers run in one
 * task group, and the wait for the group sits inside a timeout scope of
 * TIMEOUT ms:
 *
 *     tide_timeout_begin(&scope, timeout);
 *     rc = tide_group_wait(&group);      // -ETIMEDOUT when the deadline passes
 *     tide_timeout_end(&scope);
 *
 * When the deadline passes, tide_group_wait cancels every worker still
 * running and waits for them to end (each sees -ECANCELED from whatever
 * call it was blocked in and closes its connection), so when it returns
 * nothing is left running.  This is asyncio's
 *     async with asyncio.timeout(t): async with TaskGroup() as g: ...
 *
 * The program prints which workers finished and which were cancelled, and
 * checks the outcome: workers whose delay is well under the deadline must
 * finish, those well over it must be cancelled (the ones close to it may
 * go either way on a loaded machine).  It exits 0 when that holds, so ctest
 * runs "parallel_fetch --quick" as a smoke test.
 */
#include <tide.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_WORKERS 1000

enum { PENDING, FINISHED, CANCELLED, FAILED };

typedef struct fetch {
    int id;
    int delay_ms;     /* what the worker asks the server for */
    int status;       /* PENDING / FINISHED / CANCELLED / FAILED */
    int err;          /* why it failed or was cancelled */
    int64_t took_ms;  /* for the finished ones */
} fetch;

typedef struct app {
    int workers, timeout_ms, step_ms;
    int port;
    fetch f[MAX_WORKERS];
    int group_rc, scope_rc;
    int64_t elapsed_ms;
} app;

/* ---------------------------------------------------------- the server */

/* One task per connection (tide_start_server).  Reads request lines and
 * answers each after the delay it asks for. */
static int slow_handler(tide_stream *s, void *arg)
{
    char line[128], reply[64];
    ssize_t n;
    (void)arg;

    while ((n = tide_stream_readline(s, line, sizeof line - 1)) > 0) {
        int id = 0, delay = 0;
        line[n] = '\0';
        if (sscanf(line, "%d %d", &id, &delay) != 2)
            return -EPROTO;
        if (tide_sleep(delay) < 0) /* cancelled when the server closes */
            return 0;
        n = snprintf(reply, sizeof reply, "%d ok\n", id);
        if (tide_stream_write(s, reply, (size_t)n) < 0 || tide_stream_drain(s) < 0)
            return 0; /* the client went away (it was cancelled) */
    }
    return 0;
}

/* ---------------------------------------------------------- the workers */

typedef struct job {
    app *a;
    fetch *f;
} job;

static int worker(void *arg)
{
    job *j = arg;
    fetch *f = j->f;
    tide_stream *s = NULL;
    char req[64], line[64];
    int64_t t0 = tide_now();
    int rc, id = -1;
    ssize_t n;

    rc = tide_open_connection("127.0.0.1", j->a->port, &s);
    if (rc == 0) {
        n = snprintf(req, sizeof req, "%d %d\n", f->id, f->delay_ms);
        n = tide_stream_write(s, req, (size_t)n);
        rc = n < 0 ? (int)n : tide_stream_drain(s);
    }
    if (rc == 0) {
        n = tide_stream_readline(s, line, sizeof line - 1); /* the slow part */
        if (n < 0)
            rc = (int)n;
        else if (n == 0)
            rc = -ECONNRESET;
        else {
            line[n] = '\0';
            if (sscanf(line, "%d ok", &id) != 1 || id != f->id)
                rc = -EPROTO;
        }
    }
    if (s)
        tide_stream_close(s); /* closes even when cancelled */

    f->err = rc;
    if (rc == 0) {
        f->status = FINISHED;
        f->took_ms = tide_now() - t0;
    } else {
        f->status = rc == -ECANCELED ? CANCELLED : FAILED;
    }
    /* A real failure makes the group cancel the other workers and return
     * it; a cancellation does not count as one. */
    return rc;
}

/* ---------------------------------------------------------- main task */

static int run(void *arg)
{
    app *a = arg;
    static job jobs[MAX_WORKERS];
    tide_server *srv;
    tide_group g;
    tide_scope scope;
    int64_t t0;
    int rc;

    rc = tide_start_server("127.0.0.1", 0, slow_handler, NULL, NULL, &srv);
    if (rc < 0) {
        fprintf(stderr, "parallel_fetch: cannot start the server: %s\n", tide_strerror(rc));
        return rc;
    }
    a->port = tide_server_port(srv);
    printf("parallel_fetch: server on 127.0.0.1:%d; %d workers, delays 0..%d ms, "
           "deadline %d ms\n",
           a->port, a->workers, (a->workers - 1) * a->step_ms, a->timeout_ms);

    t0 = tide_now();
    tide_group_init(&g);
    for (int i = 0; i < a->workers; i++) {
        jobs[i] = (job){a, &a->f[i]};
        rc = tide_group_spawn(&g, worker, &jobs[i], NULL, NULL);
        if (rc < 0) {
            fprintf(stderr, "spawn: %s\n", tide_strerror(rc));
            break;
        }
    }
    /* The overall deadline: the group is cancelled when it passes, and
     * still waited for. */
    tide_timeout_begin(&scope, a->timeout_ms);
    a->group_rc = tide_group_wait(&g);
    a->scope_rc = tide_timeout_end(&scope);
    a->elapsed_ms = tide_now() - t0;

    /* Stop the server; its handlers still sleeping for cancelled workers
     * are cancelled too. */
    tide_server_close(srv, TIDE_SERVER_CANCEL);
    return 0;
}

static int parse_int(const char *s, int lo, int hi)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*end || v < lo || v > hi) {
        fprintf(stderr, "bad number '%s' (%d..%d)\n", s, lo, hi);
        exit(2);
    }
    return (int)v;
}

int main(int argc, char **argv)
{
    static app a;
    int finished = 0, cancelled = 0, failed = 0, pending = 0, bad = 0;
    int margin;

    a.workers = 100;
    a.timeout_ms = 300;
    a.step_ms = 6; /* delays 0 .. 594 ms: about half finish */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            a.workers = 40;
            a.timeout_ms = 200;
            a.step_ms = 10; /* 0 .. 390 ms */
        } else if (!strcmp(argv[i], "--workers") && i + 1 < argc) {
            a.workers = parse_int(argv[++i], 1, MAX_WORKERS);
        } else if (!strcmp(argv[i], "--timeout") && i + 1 < argc) {
            a.timeout_ms = parse_int(argv[++i], 1, 60000);
        } else if (!strcmp(argv[i], "--step") && i + 1 < argc) {
            a.step_ms = parse_int(argv[++i], 0, 10000);
        } else {
            fprintf(stderr, "usage: %s [--quick] [--workers N] [--timeout MS] [--step MS]\n",
                    argv[0]);
            return 2;
        }
    }
    for (int i = 0; i < a.workers; i++) {
        a.f[i].id = i;
        a.f[i].delay_ms = i * a.step_ms;
    }

    if (tide_run(run, &a) < 0)
        return 1;

    /* What happened. */
    printf("finished: ");
    for (int i = 0; i < a.workers; i++)
        if (a.f[i].status == FINISHED)
            printf("%s%d(%lldms)", finished++ ? " " : "", i, (long long)a.f[i].took_ms);
    printf("\ncancelled:");
    for (int i = 0; i < a.workers; i++)
        if (a.f[i].status == CANCELLED)
            printf(" %d", i), cancelled++;
    printf("\n");
    for (int i = 0; i < a.workers; i++) {
        if (a.f[i].status == FAILED) {
            printf("failed: %d (%s)\n", i, tide_strerror(a.f[i].err));
            failed++;
        } else if (a.f[i].status == PENDING) {
            printf("still pending after the group ended: %d\n", i);
            pending++;
        }
    }
    printf("group: %s, scope: %s, after %lld ms; %d finished, %d cancelled, %d failed\n",
           tide_strerror(a.group_rc), tide_strerror(a.scope_rc), (long long)a.elapsed_ms,
           finished, cancelled, failed);

    /* The checks.  Near the deadline either outcome is fine: a busy machine
     * (sanitizers, qemu) may be late by tens of milliseconds. */
    margin = a.timeout_ms / 2;
    for (int i = 0; i < a.workers; i++) {
        int d = a.f[i].delay_ms;
        if (d + margin < a.timeout_ms && a.f[i].status != FINISHED) {
            fprintf(stderr, "worker %d (delay %d ms) should have finished\n", i, d);
            bad++;
        }
        if (d > a.timeout_ms + 20 && a.f[i].status != CANCELLED) {
            fprintf(stderr, "worker %d (delay %d ms) should have been cancelled\n", i, d);
            bad++;
        }
    }
    int any_late = (a.workers - 1) * a.step_ms > a.timeout_ms + 20;
    if (failed || pending || bad ||
        (any_late && (a.group_rc != -ETIMEDOUT || a.scope_rc != -ETIMEDOUT)) ||
        (!any_late && a.group_rc != 0 && a.group_rc != -ETIMEDOUT)) {
        fprintf(stderr, "parallel_fetch: FAILED\n");
        return 1;
    }
    printf("OK\n");
    return 0;
}
