/*
 * http_fetch.c -- fetch many URLs at once (the scraper case).
 *
 *   http_fetch [-c CONCURRENCY] [-t TIMEOUT_MS] [-o DIR] URL...
 *
 * One task per URL; a semaphore lets at most CONCURRENCY (default 10) of
 * them talk at a time, and they share one tide_http_client, so requests to
 * the same host reuse its keep-alive connections.  Each fetch runs inside a
 * timeout scope of TIMEOUT_MS (default 10 000) covering the whole request
 * and body, follows up to 5 redirects, and prints one line:
 *
 *     200  1234 B  12.3 ms  http://host/path
 *     ERR  Connection refused  12.3 ms  http://host/other
 *
 * With -o DIR each body is written to DIR/N (N: the URL's position on the
 * command line, from 1).  The exit status is 0 when every URL answered
 * with a status below 400, else 1 (2 for a bad command line).
 */
#include <tide.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct job {
    const char *url;
    int index;
    int status; /* or a negative errno */
    uint64_t bytes;
    double ms;
} job;

static tide_http_client *g_client;
static tide_sem g_sem;
static int64_t g_timeout = 10000;
static const char *g_dir;

static int fetch_body(tide_http_resp *r, job *j)
{
    char buf[16384], path[4096];
    int fd = -1, rc = 0;
    ssize_t n;

    if (g_dir) {
        snprintf(path, sizeof path, "%s/%d", g_dir, j->index);
        fd = tide_file_open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
            return fd;
    }
    while ((n = tide_http_resp_read(r, buf, sizeof buf)) > 0) {
        j->bytes += (uint64_t)n;
        if (fd >= 0) {
            ssize_t w = tide_file_write(fd, buf, (size_t)n);
            if (w < 0) {
                rc = (int)w;
                break;
            }
        }
    }
    if (n < 0)
        rc = (int)n;
    if (fd >= 0)
        tide_file_close(fd);
    return rc;
}

static int fetch(void *arg)
{
    job *j = arg;
    tide_http_req_opts o;
    tide_http_resp *r = NULL;
    tide_scope sc;
    int64_t t0;
    int rc;

    rc = tide_sem_acquire(&g_sem);
    if (rc < 0) {
        j->status = rc;
        return 0;
    }
    t0 = tide_now();
    tide_http_req_opts_init(&o);
    o.max_redirects = 5;
    tide_timeout_begin(&sc, g_timeout);
    rc = tide_http_client_request(g_client, j->url, &o, &r);
    if (rc == 0) {
        j->status = tide_http_resp_status(r);
        rc = fetch_body(r, j);
        if (rc < 0)
            j->status = rc;
        tide_http_resp_free(r);
    } else {
        j->status = rc;
    }
    tide_timeout_end(&sc);
    tide_sem_release(&g_sem);
    j->ms = (double)(tide_now() - t0);
    if (j->status > 0)
        printf("%3d  %llu B  %.1f ms  %s\n", j->status, (unsigned long long)j->bytes, j->ms,
               j->url);
    else
        printf("ERR  %s  %.1f ms  %s\n", tide_strerror(j->status), j->ms, j->url);
    fflush(stdout);
    return 0;
}

typedef struct args {
    job *jobs;
    int n;
} args;

static int main_task(void *arg)
{
    args *a = arg;
    tide_task **ts = calloc((size_t)a->n, sizeof *ts);
    int failed = 0, rc;

    if (!ts)
        return -ENOMEM;
    rc = tide_http_client_new(&g_client, NULL);
    if (rc < 0) {
        free(ts);
        return rc;
    }
    for (int i = 0; i < a->n; i++) {
        rc = tide_create_task(&ts[i], fetch, &a->jobs[i]);
        if (rc < 0) {
            a->jobs[i].status = rc;
            ts[i] = NULL;
        }
    }
    for (int i = 0; i < a->n; i++) {
        if (ts[i])
            tide_await(ts[i]);
        if (a->jobs[i].status < 0 || a->jobs[i].status >= 400)
            failed++;
    }
    free(ts);
    tide_http_client_free(g_client);
    return failed ? 1 : 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: http_fetch [-c CONCURRENCY] [-t TIMEOUT_MS] [-o DIR] URL...\n");
    exit(2);
}

int main(int argc, char **argv)
{
    long conc = 10;
    args a;
    int opt, rc;

    while ((opt = getopt(argc, argv, "c:t:o:h")) != -1) {
        char *end;
        switch (opt) {
        case 'c':
            conc = strtol(optarg, &end, 10);
            if (*end || conc < 1 || conc > 100000)
                usage();
            break;
        case 't':
            g_timeout = strtoll(optarg, &end, 10);
            if (*end || g_timeout < 1)
                usage();
            break;
        case 'o':
            g_dir = optarg;
            break;
        default:
            usage();
        }
    }
    if (optind >= argc)
        usage();
    a.n = argc - optind;
    a.jobs = calloc((size_t)a.n, sizeof *a.jobs);
    if (!a.jobs)
        return 1;
    for (int i = 0; i < a.n; i++) {
        a.jobs[i].url = argv[optind + i];
        a.jobs[i].index = i + 1;
    }
    tide_sem_init(&g_sem, conc);
    rc = tide_run(main_task, &a);
    free(a.jobs);
    if (rc < 0) {
        fprintf(stderr, "http_fetch: %s\n", tide_strerror(rc));
        return 1;
    }
    return rc;
}
