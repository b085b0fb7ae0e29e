/*
 * ws_chat.c -- a WebSocket chat room.
 *
 *   ws_chat [HOST] PORT        then open http://HOST:PORT/ in a browser (two tabs)
 *
 * GET / answers a small HTML page; its script connects to ws://HOST:PORT/chat
 * and every message a client sends is relayed to all clients (the sender
 * too), prefixed with the sender's number.  Stops on SIGINT / SIGTERM.
 *
 * A slow client never stalls the others: each client has a writer task fed
 * by a bounded queue (QUEUE_MAX messages); the relay only ever puts without
 * waiting, and a client whose queue is full is disconnected (close code
 * 1008, "too slow").  A message is stored once and shared by reference.
 *
 * The HTTP side is tide's HTTP server (tide_http_serve): handler() answers
 * the page and upgrades /chat with tide_ws_upgrade.  On SIGINT / SIGTERM
 * the server closes gracefully: every chat session is cancelled and closes
 * with 1001 (going away).
 */
#include <tide.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUEUE_MAX 64         /* messages waiting for one client */
#define MESSAGE_MAX (64 * 1024)

static const char page[] =
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>tide chat</title></head>\n"
    "<body><h1>tide chat</h1><ul id=\"log\"></ul>\n"
    "<form id=\"f\"><input id=\"msg\" autocomplete=\"off\"><button>send</button></form>\n"
    "<script>\n"
    "const log = document.getElementById('log');\n"
    "const ws = new WebSocket('ws://' + location.host + '/chat');\n"
    "function add(t) { const li = document.createElement('li'); li.textContent = t;\n"
    "  log.appendChild(li); document.title = 'n=' + log.children.length; }\n"
    "ws.onopen = () => { document.body.dataset.open = '1'; };\n"
    "ws.onmessage = (e) => add(e.data);\n"
    "ws.onclose = (e) => add('[closed ' + e.code + ']');\n"
    "document.getElementById('f').onsubmit = (e) => { e.preventDefault();\n"
    "  const m = document.getElementById('msg'); if (m.value) ws.send(m.value); m.value = ''; };\n"
    "</script></body></html>\n";

/* A message shared by every queue it sits in. */
typedef struct message {
    int refs;
    size_t len;
    char data[];
} message;

static void message_unref(void *p)
{
    message *m = p;
    if (m && --m->refs == 0)
        free(m);
}

typedef struct client {
    struct client *prev, *next;
    int id;
    tide_ws *ws;
    tide_queue *queue;
    tide_task *reader, *writer;
    int slow;
} client;

static client room = {&room, &room, 0, NULL, NULL, NULL, NULL, 0};
static int next_id = 1;
static unsigned long dropped_slow;

/* Puts m in every client's queue without waiting; a full queue means a
 * slow client: it is disconnected. */
static void relay(message *m)
{
    for (client *c = room.next; c != &room; c = c->next) {
        if (c->slow)
            continue;
        m->refs++;
        if (tide_queue_put_nowait(c->queue, m) < 0) {
            m->refs--;
            c->slow = 1;
            dropped_slow++;
            tide_queue_shutdown(c->queue, 1);
            tide_cancel(c->writer);
            tide_cancel(c->reader);
        }
    }
}

static int writer_main(void *arg)
{
    client *c = arg;
    void *item;
    while (tide_queue_get(c->queue, &item) == 0) {
        message *m = item;
        int rc = tide_ws_send(c->ws, TIDE_WS_OP_TEXT, m->data, m->len);
        message_unref(m);
        if (rc < 0)
            break;
    }
    return 0;
}

static int chat_session(tide_http_exchange *x)
{
    tide_ws_opts o;
    client c;
    tide_queue_opts qo;
    tide_ws_msg msg;
    int rc;

    memset(&c, 0, sizeof c);
    tide_ws_opts_init(&o);
    o.max_message = MESSAGE_MAX;
    o.ping_interval_ms = 30000; /* drop dead peers */
    o.close_timeout_ms = 2000;
    if (tide_ws_upgrade(x, &o, &c.ws) < 0)
        return 0; /* not a WebSocket handshake: answered */
    tide_queue_opts_init(&qo);
    qo.maxsize = QUEUE_MAX;
    qo.free_item = message_unref;
    if (tide_queue_new(&c.queue, &qo) < 0) {
        tide_ws_close(c.ws, TIDE_WS_CLOSE_INTERNAL, NULL);
        return 0;
    }
    c.id = next_id++;
    c.reader = tide_current_task();
    if (tide_create_task(&c.writer, writer_main, &c) < 0) {
        tide_queue_free(c.queue);
        tide_ws_close(c.ws, TIDE_WS_CLOSE_INTERNAL, NULL);
        return 0;
    }
    c.next = &room;
    c.prev = room.prev;
    room.prev->next = &c;
    room.prev = &c;
    printf("ws_chat: client %d joined\n", c.id);
    fflush(stdout);

    while ((rc = tide_ws_recv(c.ws, &msg)) == 0) {
        if (msg.opcode != TIDE_WS_OP_TEXT)
            continue;
        char prefix[24];
        int pl = snprintf(prefix, sizeof prefix, "#%d: ", c.id);
        message *m = malloc(sizeof *m + (size_t)pl + msg.len);
        if (!m)
            break;
        m->refs = 1;
        m->len = (size_t)pl + msg.len;
        memcpy(m->data, prefix, (size_t)pl);
        memcpy(m->data + pl, msg.data, msg.len);
        relay(m);
        message_unref(m);
        /* Let the writers run before the next message: a burst from one
         * client must not fill the queues of clients that keep up. */
        if (tide_sleep(0) < 0)
            break;
    }

    /* Leave the room, stop the writer, close (shielded: this task may be
     * cancelled, by the relay or at shutdown). */
    c.prev->next = c.next;
    c.next->prev = c.prev;
    tide_scope sh;
    tide_shield_begin(&sh);
    tide_queue_shutdown(c.queue, 1);
    tide_cancel(c.writer);
    tide_await(c.writer);
    tide_shield_end(&sh);
    tide_queue_free(c.queue);
    tide_ws_close(c.ws, c.slow ? TIDE_WS_CLOSE_POLICY : TIDE_WS_CLOSE_GOING_AWAY,
                  c.slow ? "too slow" : NULL);
    printf("ws_chat: client %d left%s\n", c.id, c.slow ? " (too slow)" : "");
    fflush(stdout);
    return 0;
}

static int handler(tide_http_exchange *x, void *arg)
{
    static const tide_http_header html = {"Content-Type", 12, "text/html; charset=utf-8", 24};
    static const tide_http_header allow = {"Allow", 5, "GET, HEAD", 9};
    const tide_http_request *req = tide_http_exchange_request(x);
    int is_page = req->path_len == 1 && req->path[0] == '/';
    (void)arg;

    if (req->path_len == 5 && memcmp(req->path, "/chat", 5) == 0)
        return chat_session(x);
    if (!is_page)
        return tide_http_respond(x, 404, NULL, 0, NULL, 0);
    if (req->method_id != TIDE_HTTP_GET && req->method_id != TIDE_HTTP_HEAD)
        return tide_http_respond(x, 405, &allow, 1, NULL, 0);
    return tide_http_respond(x, 200, &html, 1, page, sizeof page - 1); /* HEAD: no body */
}

struct config {
    const char *host;
    int port;
};

static int server_main(void *arg)
{
    const struct config *cfg = arg;
    tide_http_server *srv;
    sigset_t stop;
    int rc = tide_http_serve(cfg->host, cfg->port, handler, NULL, NULL, &srv);
    if (rc < 0) {
        fprintf(stderr, "ws_chat: cannot listen on %s:%d: %s\n", cfg->host, cfg->port,
                tide_strerror(rc));
        return 1;
    }
    printf("ws_chat: listening on %s:%d\n", cfg->host, tide_http_server_port(srv));
    fflush(stdout);
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    tide_signal_wait(&stop);
    tide_http_server_close(srv, TIDE_SERVER_WAIT);
    printf("ws_chat: stopped (%lu slow clients dropped)\n", dropped_slow);
    return 0;
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
    if (argc == 2) {
        cfg.port = parse_port(argv[1]);
    } else if (argc == 3) {
        cfg.host = argv[1];
        cfg.port = parse_port(argv[2]);
    }
    if (cfg.port < 0) {
        fprintf(stderr, "usage: ws_chat [HOST] PORT\n");
        return 2;
    }
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    return tide_run(server_main, &cfg) == 0 ? 0 : 1;
}
