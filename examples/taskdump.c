/*
 * What tide_loop_dump shows: a small server whose clients and workers are
 * all waiting on something, dumped to stdout (docs/debugging.md pastes its
 * output).  Run it as `taskdump`; with TIDE_DEBUG=1, `kill -QUIT` on a
 * program gives the same dump while it runs.
 */
#include <stdio.h>
#include <string.h>

#include "tide.h"

static tide_queue *jobs;
static tide_lock table_lock;
static tide_event shutdown_ev;

/* A connection handler: reads lines until the client goes away. */
static int serve_client(tide_stream *s, void *arg)
{
    char line[256];
    (void)arg;
    while (tide_stream_readline(s, line, sizeof line) > 0)
        ;
    return 0;
}

/* A client that connected and waits for a greeting that never comes. */
static int client(void *arg)
{
    tide_stream *s;
    char buf[16];
    int rc = tide_open_connection("127.0.0.1", *(int *)arg, &s);
    if (rc < 0)
        return rc;
    rc = (int)tide_stream_read(s, buf, sizeof buf);
    tide_stream_close(s);
    return rc < 0 ? rc : 0;
}

static int worker(void *arg)
{
    void *job;
    (void)arg;
    while (tide_queue_get(jobs, &job) == 0)
        tide_queue_task_done(jobs);
    return 0;
}

static int update_table(void *arg)
{
    (void)arg;
    int rc = tide_lock_acquire(&table_lock);
    if (rc == 0)
        tide_lock_release(&table_lock);
    return rc;
}

static int janitor(void *arg)
{
    tide_scope s;
    (void)arg;
    tide_timeout_begin(&s, 30000);
    int rc = tide_event_wait(&shutdown_ev);
    tide_timeout_end(&s);
    return rc;
}

static int run(void *arg)
{
    tide_task *ts[16];
    tide_task_opts o;
    tide_server *srv;
    size_t n = 0, i;
    int port, rc;
    (void)arg;

    tide_lock_init(&table_lock);
    tide_event_init(&shutdown_ev);
    if ((rc = tide_queue_new(&jobs, NULL)) < 0)
        return rc;
    if ((rc = tide_start_server("127.0.0.1", 0, serve_client, NULL, NULL, &srv)) < 0)
        return rc;
    port = tide_server_port(srv);
    tide_task_opts_init(&o);
    o.name = "client";
    for (i = 0; i < 3; i++)
        tide_create_task_ex(&ts[n++], NULL, client, &port, &o);
    o.name = "worker";
    for (i = 0; i < 4; i++)
        tide_create_task_ex(&ts[n++], NULL, worker, NULL, &o);
    tide_lock_acquire(&table_lock); /* held by "main" while it dumps */
    o.name = "update-table";
    tide_create_task_ex(&ts[n++], NULL, update_table, NULL, &o);
    o.name = "janitor";
    tide_create_task_ex(&ts[n++], NULL, janitor, NULL, &o);
    tide_sleep(20); /* let everyone block */

    fflush(stdout);
    rc = tide_loop_dump(NULL, 1);

    tide_lock_release(&table_lock);
    tide_event_set(&shutdown_ev);
    tide_queue_shutdown(jobs, 1);
    tide_server_close(srv, 1);
    for (i = 0; i < n; i++)
        tide_cancel(ts[i]);
    for (i = 0; i < n; i++)
        (void)tide_await(ts[i]);
    tide_queue_free(jobs);
    return rc;
}

int main(void)
{
    int rc = tide_run(run, NULL);
    if (rc < 0)
        fprintf(stderr, "taskdump: %s\n", tide_strerror(rc));
    return rc < 0 ? 1 : 0;
}
