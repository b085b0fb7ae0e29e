/*
 * glib_embed.c -- tide inside a GLib main loop, both on one thread.
 *
 *   glib_embed PORT [TICK_MS]        e.g.  glib_embed 9000
 *                                          glib_embed 0 250
 *
 * tide tasks run a TCP echo server on 127.0.0.1:PORT (0 picks a free port;
 * the "listening on" line tells which) while GLib prints a tick every
 * TICK_MS milliseconds (default 1000) from a g_timeout_add callback.
 * SIGINT or SIGTERM (g_unix_signal_add) quits the GLib loop; freeing the
 * tide loop then cancels the server task, which closes the server, and the
 * program exits with status 0.  Built only when GLib is found (Debian:
 * libglib2.0-dev).
 *
 * What it shows: the embedding contract of tide.h.  A small custom GSource
 * watches tide_loop_fd() for readability, takes its timeout from
 * tide_loop_timeout_ms() (0: dispatch now, -1: no timer), and dispatches
 * with tide_loop_run_once(), which never blocks.  GLib does the sleeping.
 */
#include <tide.h>

#include <glib-unix.h>
#include <glib.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

/* ------------------------------------------------ tide as a GSource */

typedef struct TideSource {
    GSource base; /* first: GLib allocates and casts the whole struct */
    tide_loop *loop;
    gpointer fd_tag; /* from g_source_add_unix_fd */
} TideSource;

/* Before GLib polls: ready now, or how long GLib may sleep for tide. */
static gboolean tide_source_prepare(GSource *base, gint *timeout)
{
    TideSource *s = (TideSource *)base;
    int64_t ms = tide_loop_timeout_ms(s->loop);

    *timeout = ms > G_MAXINT ? G_MAXINT : (gint)ms; /* -1 stays -1 */
    return ms == 0;
}

/* After GLib polled: tide's fd is readable, or its timer is due. */
static gboolean tide_source_check(GSource *base)
{
    TideSource *s = (TideSource *)base;

    return (g_source_query_unix_fd(base, s->fd_tag) & G_IO_IN) ||
           tide_loop_timeout_ms(s->loop) == 0;
}

static gboolean tide_source_dispatch(GSource *base, GSourceFunc cb, gpointer data)
{
    TideSource *s = (TideSource *)base;

    (void)cb;
    (void)data;
    tide_loop_run_once(s->loop); /* one iteration; never blocks */
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs tide_source_funcs = {
    .prepare = tide_source_prepare,
    .check = tide_source_check,
    .dispatch = tide_source_dispatch,
};

/* A source that runs loop from GLib's default main context. */
static GSource *tide_source_attach(tide_loop *loop)
{
    GSource *base = g_source_new(&tide_source_funcs, sizeof(TideSource));
    TideSource *s = (TideSource *)base;

    s->loop = loop;
    s->fd_tag = g_source_add_unix_fd(base, tide_loop_fd(loop), G_IO_IN);
    g_source_set_name(base, "tide");
    g_source_attach(base, NULL);
    return base;
}

/* ------------------------------------------------------- the program */

typedef struct app {
    GMainLoop *main;
    int port;
    int status;                /* the exit status */
    unsigned long ticks;       /* GLib's timer */
    unsigned long connections; /* tide's server */
} app;

/* One task per connection (tide_start_server): echo until end of file. */
static int echo_handler(tide_stream *s, void *arg)
{
    app *a = arg;
    char buf[4096];
    ssize_t n;

    a->connections++;
    while ((n = tide_stream_read(s, buf, sizeof buf)) > 0)
        if (tide_stream_write(s, buf, (size_t)n) < 0 || tide_stream_drain(s) < 0)
            break;
    return 0;
}

/* The tide side: serve until cancelled, which tide_loop_free does. */
static int server_task(void *arg)
{
    app *a = arg;
    tide_server *srv;
    tide_scope shield;
    int rc;

    rc = tide_start_server("127.0.0.1", a->port, echo_handler, a, NULL, &srv);
    if (rc < 0) {
        fprintf(stderr, "glib_embed: cannot listen on port %d: %s\n", a->port, tide_strerror(rc));
        a->status = 1;
        g_main_loop_quit(a->main); /* plain GLib calls are fine in a task */
        return 0;
    }
    printf("glib_embed: listening on 127.0.0.1:%d\n", tide_server_port(srv));
    fflush(stdout); /* scripts wait for this line to learn the port */

    while (tide_sleep(60 * 1000) == 0)
        ; /* -ECANCELED ends it */

    /* Cancelled: close the server (cancelling its connections) inside a
     * shield, so the close itself is not cut short. */
    tide_shield_begin(&shield);
    rc = tide_server_close(srv, TIDE_SERVER_CANCEL);
    tide_shield_end(&shield);
    if (rc < 0) {
        fprintf(stderr, "glib_embed: close: %s\n", tide_strerror(rc));
        a->status = 1;
    }
    return 0;
}

/* The GLib side: a periodic timer of its own. */
static gboolean on_tick(gpointer data)
{
    app *a = data;

    printf("glib_embed: tick %lu\n", ++a->ticks);
    fflush(stdout);
    return G_SOURCE_CONTINUE;
}

static gboolean on_signal(gpointer data)
{
    app *a = data;

    g_main_loop_quit(a->main);
    return G_SOURCE_REMOVE;
}

/* Parses a number lo..hi; -1 if s is not one. */
static long parse_num(const char *s, long lo, long hi)
{
    char *end;
    long v = strtol(s, &end, 10);
    return (*s && !*end && v >= lo && v <= hi) ? v : -1;
}

int main(int argc, char **argv)
{
    app a = {NULL, -1, 0, 0, 0};
    long tick_ms = 1000;
    tide_loop *loop;
    tide_task *t;
    GSource *src;
    int rc;

    if (argc >= 2)
        a.port = (int)parse_num(argv[1], 0, 65535);
    if (argc == 3)
        tick_ms = parse_num(argv[2], 1, 3600 * 1000);
    if (argc < 2 || argc > 3 || a.port < 0 || tick_ms < 0) {
        fprintf(stderr, "usage: glib_embed PORT [TICK_MS]\n"
                        "  An echo server in tide tasks on 127.0.0.1:PORT (0: any free port)\n"
                        "  inside a GLib main loop that ticks every TICK_MS ms (default 1000).\n"
                        "  Stops cleanly on SIGINT or SIGTERM.\n");
        return 2;
    }

    rc = tide_loop_new(&loop);
    if (rc < 0) {
        fprintf(stderr, "glib_embed: %s\n", tide_strerror(rc));
        return 1;
    }
    /* The task starts on the loop's first iteration, in GLib's first. */
    rc = tide_create_task_ex(&t, loop, server_task, &a, NULL);
    if (rc == 0)
        rc = tide_detach(t);
    if (rc < 0) {
        fprintf(stderr, "glib_embed: %s\n", tide_strerror(rc));
        tide_loop_free(loop);
        return 1;
    }

    a.main = g_main_loop_new(NULL, FALSE);
    src = tide_source_attach(loop);
    g_timeout_add((guint)tick_ms, on_tick, &a);
    g_unix_signal_add(SIGINT, on_signal, &a);
    g_unix_signal_add(SIGTERM, on_signal, &a);

    g_main_loop_run(a.main);

    /* GLib has stopped; tide's tasks finish without it: tide_loop_free
     * cancels the server task and runs the loop until every task ended. */
    g_source_destroy(src);
    g_source_unref(src);
    tide_loop_free(loop);
    printf("glib_embed: stopped after %lu ticks, %lu connections\n", a.ticks, a.connections);
    g_main_loop_unref(a.main);
    return a.status;
}
