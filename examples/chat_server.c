/*
 * chat_server.c -- a line-based chat room.
 *
 *   chat_server [HOST] PORT        e.g.  chat_server 9000
 *
 * Connect with "nc 127.0.0.1 9000" from a few terminals: each line a client
 * sends goes to every other client, prefixed with the sender's name.  HOST
 * defaults to 127.0.0.1; PORT 0 picks a free port (the "listening on" line
 * tells which).  SIGINT or SIGTERM stops it cleanly (exit status 0).
 *
 * What it shows: fan-out without letting one slow client stall the room.
 *
 * A client that stops reading (a stalled laptop, a "nc" suspended with
 * Ctrl-Z) cannot receive; what we send it piles up.  If the sender waited for
 * it (tide_stream_drain on the slow client's stream), the whole room would
 * wait.  So the broadcaster never waits: tide_stream_write only queues, and
 * before queuing it checks how much is already queued for that client
 * (tide_stream_write_pending).  A client whose backlog passes MAX_BACKLOG is
 * disconnected: its task is cancelled, its handler returns, the server
 * closes its connection.  Memory stays bounded and the others go on.
 */
#include <tide.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINE 1024            /* longest line a client may send */
#define MAX_BACKLOG (256 * 1024) /* bytes queued for one client before we drop it */

/* One connected client.  It lives on its handler task's stack and is linked
 * into the room while it is in it. */
struct client {
    struct client *prev, *next;
    tide_stream *s;
    tide_task *task; /* the handler's task, to cancel it */
    char name[16];
    int dropped; /* disconnected for being too slow */
};

struct room {
    struct client *clients;
    unsigned long online, joined, lines, dropped;
};

static void room_leave(struct room *r, struct client *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        r->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    r->online--;
}

/* Drops a client that does not keep up: out of the room, and its task
 * cancelled.  Its handler wakes with -ECANCELED and returns. */
static void drop(struct room *r, struct client *c)
{
    c->dropped = 1;
    room_leave(r, c);
    r->dropped++;
    tide_cancel(c->task);
}

/* Sends msg to every client but `from` (NULL: everybody).  Never waits. */
static void broadcast(struct room *r, const struct client *from, const char *msg, size_t len)
{
    struct client *c, *next;

    for (c = r->clients; c; c = next) {
        next = c->next; /* drop() unlinks c */
        if (c == from)
            continue;
        if (tide_stream_write_pending(c->s) + len > MAX_BACKLOG) {
            drop(r, c);
            continue;
        }
        /* Queues what the socket cannot take now; the loop sends it when
         * the client reads.  An error means the client is gone: its own
         * handler sees it too and leaves the room. */
        (void)tide_stream_write(c->s, msg, len);
    }
}

/* Sends a formatted notice ("* ...") to everybody but `from`. */
static void announce(struct room *r, const struct client *from, const char *fmt, const char *name)
{
    char msg[128];
    int n = snprintf(msg, sizeof msg, fmt, name);
    broadcast(r, from, msg, (size_t)n);
}

/* The connection handler, one task per client. */
static int chat_handler(tide_stream *s, void *arg)
{
    static unsigned next_id;
    struct room *r = arg;
    struct client me = {0};
    char line[MAX_LINE + 2], msg[sizeof me.name + MAX_LINE + 4];
    int n;

    me.s = s;
    me.task = tide_current_task();
    snprintf(me.name, sizeof me.name, "guest%u", ++next_id);

    n = snprintf(msg, sizeof msg, "* welcome %s, %lu other(s) here\n", me.name, r->online);
    (void)tide_stream_write(s, msg, (size_t)n);
    announce(r, &me, "* %s joined\n", me.name);
    me.next = r->clients; /* join the room */
    if (me.next)
        me.next->prev = &me;
    r->clients = &me;
    r->online++;
    r->joined++;

    for (;;) {
        /* One line, "\n" included.  0: the client hung up; -EMSGSIZE or
         * -ENOBUFS: a line longer than MAX_LINE; -ECANCELED: dropped, or
         * the server is shutting down. */
        ssize_t len = tide_stream_readline(s, line, sizeof line - 1);
        if (len == -EMSGSIZE || len == -ENOBUFS) {
            static const char too_long[] = "* line too long, bye\n";
            (void)tide_stream_write(s, too_long, sizeof too_long - 1);
            break;
        }
        if (len <= 0)
            break;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--; /* strip "\n" or "\r\n" (and the last line may have none) */
        if (len == 0)
            continue;
        line[len] = '\0';
        n = snprintf(msg, sizeof msg, "%s: %s\n", me.name, line);
        broadcast(r, &me, msg, (size_t)n);
        r->lines++;
    }

    if (me.dropped) {
        announce(r, NULL, "* %s was too slow and was disconnected\n", me.name);
    } else {
        room_leave(r, &me);
        announce(r, NULL, "* %s left\n", me.name);
    }
    return 0; /* the server closes the stream */
}

struct config {
    const char *host;
    int port;
};

static int chat_main(void *arg)
{
    const struct config *cfg = arg;
    struct room room = {0};
    tide_server_opts opts;
    tide_server *srv;
    sigset_t stop;
    int rc, sig;

    tide_server_opts_init(&opts);
    /* The stream's read limit: readline fails with -EMSGSIZE rather than
     * buffer a longer line. */
    tide_stream_opts_init(&opts.stream);
    opts.stream.limit = MAX_LINE + 1;
    rc = tide_start_server(cfg->host, cfg->port, chat_handler, &room, &opts, &srv);
    if (rc < 0) {
        fprintf(stderr, "chat_server: cannot listen on %s:%d: %s\n", cfg->host, cfg->port,
                tide_strerror(rc));
        return 1;
    }
    printf("chat_server: listening on %s:%d (Ctrl-C to stop)\n", cfg->host, tide_server_port(srv));
    fflush(stdout);

    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sig = tide_signal_wait(&stop);

    /* Say goodbye (queued, sent at once when the sockets have room), then
     * cancel every handler and wait for them. */
    announce(&room, NULL, "* %s\n", "server shutting down");
    unsigned long online = room.online;
    rc = tide_server_close(srv, TIDE_SERVER_CANCEL);
    printf("chat_server: %s: %lu clients joined, %lu lines relayed, %lu slow clients "
           "disconnected, %lu online at shutdown\n",
           sig > 0 ? strsignal(sig) : tide_strerror(sig), room.joined, room.lines, room.dropped,
           online);
    return rc < 0 ? 1 : 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: chat_server [HOST] PORT\n"
                    "  A line-based chat room.  HOST defaults to 127.0.0.1; PORT 0 picks a\n"
                    "  free port.  Stops cleanly on SIGINT or SIGTERM.\n");
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
    struct config cfg = {"127.0.0.1", -1};
    sigset_t stop;
    int rc;

    if (argc == 2) {
        cfg.port = parse_port(argv[1]);
    } else if (argc == 3) {
        cfg.host = argv[1];
        cfg.port = parse_port(argv[2]);
    }
    if (cfg.port < 0)
        return usage();

    /* Keep SIGINT/SIGTERM pending until the main task waits for them. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, NULL);

    rc = tide_run(chat_main, &cfg);
    if (rc < 0) {
        fprintf(stderr, "chat_server: %s\n", tide_strerror(rc));
        return 1;
    }
    return rc;
}
