/*
 * WebSocket echo against plain TCP echo, both on tide streams, same run.
 *
 * One process, one loop: a server (tide_start_server) and N client tasks
 * doing 64-byte round trips (one message in flight per connection) for a
 * fixed window.  TCP: the client writes 64 bytes and reads 64 back with
 * tide_stream_readexactly, the server echoes what tide_stream_read gives.
 * WebSocket: tide_ws_connect / tide_ws_accept, a binary 64-byte message
 * each way (clients mask, servers validate and unmask), tide_ws_send /
 * tide_ws_recv on both sides.  Every echoed message is checked.
 *
 * Scenarios: 1 and 100 connections.  Each figure is the best of 5 windows
 * of WINDOW_MS, TCP and WebSocket interleaved.  Prints round trips/s and
 * their ratio WebSocket / TCP (aim: >= 0.85), and the process CPU time per
 * round trip (client + server), whose ratio holds up better on a loaded
 * machine: round trips per CPU second, WebSocket / TCP.
 *
 *   ws_echo [WINDOW_MS]
 */
#include "bench.h"
#include "tide.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG 64
#define ROUNDS 5

static int64_t window_ms = 500;

typedef struct run {
    int ws;
    int conns;
    int port;
    int64_t deadline;
    long trips;
    int errors;
    int started;
    int64_t cpu0, cpu1; /* process CPU time at the window's start and end */
} run;

static int tcp_handler(tide_stream *s, void *arg)
{
    (void)arg;
    char buf[4096];
    for (;;) {
        ssize_t n = tide_stream_read(s, buf, sizeof buf);
        if (n <= 0)
            return 0;
        if (tide_stream_write(s, buf, (size_t)n) < 0 || tide_stream_drain(s) < 0)
            return 0;
    }
}

static int ws_handler(tide_stream *s, void *arg)
{
    (void)arg;
    char head[4096];
    ssize_t n = tide_stream_readuntil(s, "\r\n\r\n", 4, head, sizeof head);
    if (n <= 0)
        return 0;
    tide_http_header h[32];
    tide_http_request req;
    tide_http_request_init(&req, h, 32);
    if (tide_http_parse_request(head, (size_t)n, &req) != n)
        return 0;
    tide_ws *ws;
    if (tide_ws_accept(s, &req, NULL, &ws) < 0)
        return 0;
    tide_ws_msg m;
    while (tide_ws_recv(ws, &m) == 0)
        if (tide_ws_send(ws, m.opcode, m.data, m.len) < 0)
            break;
    tide_ws_close(ws, 1000, NULL);
    return 0;
}

static int client(void *arg)
{
    run *r = (run *)arg;
    char out[MSG], in[MSG];
    tide_stream *s = NULL;
    tide_ws *ws = NULL;
    char url[64];
    int rc;
    if (r->ws) {
        snprintf(url, sizeof url, "ws://127.0.0.1:%d/", r->port);
        rc = tide_ws_connect(url, NULL, &ws);
    } else {
        rc = tide_open_connection("127.0.0.1", r->port, &s);
    }
    if (rc < 0) {
        r->errors++;
        return 0;
    }
    r->started++;
    /* Wait until every client is connected, then run to the deadline. */
    while (r->started < r->conns)
        tide_sleep(1);
    long i = 0;
    while (tide_now() < r->deadline) {
        memset(out, (int)(i & 0x7f), MSG);
        if (r->ws) {
            tide_ws_msg m;
            if (tide_ws_send(ws, TIDE_WS_OP_BINARY, out, MSG) < 0 || tide_ws_recv(ws, &m) < 0 ||
                m.len != MSG || memcmp(m.data, out, MSG)) {
                r->errors++;
                break;
            }
        } else {
            if (tide_stream_write(s, out, MSG) < 0 || tide_stream_readexactly(s, in, MSG) != MSG ||
                memcmp(in, out, MSG)) {
                r->errors++;
                break;
            }
        }
        i++;
        r->trips++;
    }
    if (!r->cpu1)
        r->cpu1 = bench_cpu_ns();
    if (ws)
        tide_ws_close(ws, 1000, NULL);
    else
        tide_stream_close(s);
    return 0;
}

static int bench_main(void *arg)
{
    run *r = (run *)arg;
    tide_server *srv;
    int rc = tide_start_server("127.0.0.1", 0, r->ws ? ws_handler : tcp_handler, NULL, NULL, &srv);
    if (rc < 0)
        return rc;
    r->port = tide_server_port(srv);
    /* The window starts once all are connected (connects take a while at
     * 100): the deadline is set after a short setup grace. */
    r->deadline = tide_now() + 200 + window_ms;
    tide_group g;
    tide_group_init(&g);
    for (int i = 0; i < r->conns; i++)
        tide_group_spawn(&g, client, r, NULL, NULL);
    /* Count only the window: reset the counter when the setup is over. */
    while (r->started < r->conns && !r->errors)
        tide_sleep(1);
    int64_t t0 = tide_now();
    r->trips = 0;
    r->cpu0 = bench_cpu_ns();
    r->deadline = t0 + window_ms;
    tide_group_wait(&g);
    tide_server_close(srv, TIDE_SERVER_CANCEL);
    return 0;
}

/* Round trips/s; *cpu gets the CPU time per round trip (ns, client and
 * server together: both are tide). */
static double measure(int ws, int conns, double *cpu)
{
    run r;
    memset(&r, 0, sizeof r);
    r.ws = ws;
    r.conns = conns;
    if (tide_run(bench_main, &r) < 0 || r.errors) {
        fprintf(stderr, "ws_echo: %s run failed (%d errors)\n", ws ? "ws" : "tcp", r.errors);
        exit(1);
    }
    *cpu = r.trips ? (double)(r.cpu1 - r.cpu0) / (double)r.trips : 0;
    return (double)r.trips * 1000.0 / (double)window_ms;
}

int main(int argc, char **argv)
{
    if (argc > 1)
        window_ms = atol(argv[1]);
    if (window_ms <= 0)
        window_ms = 500;
    int conns[] = {1, 100};
    printf("WebSocket vs TCP echo, 64-byte messages, one in flight per connection\n");
    printf("(best of %d windows of %lld ms each, interleaved; same process and loop)\n", ROUNDS,
           (long long)window_ms);
    for (size_t c = 0; c < sizeof conns / sizeof conns[0]; c++) {
        double tcp = 0, ws = 0, tcpu = 1e18, wcpu = 1e18;
        for (int i = 0; i < ROUNDS; i++) {
            double tc, wc;
            double t = measure(0, conns[c], &tc);
            double w = measure(1, conns[c], &wc);
            if (t > tcp)
                tcp = t;
            if (w > ws)
                ws = w;
            tcpu = bench_min(tcpu, tc);
            wcpu = bench_min(wcpu, wc);
        }
        printf("%3d conn: tcp %7.0f rt/s  ws %7.0f rt/s  ratio %.2f | CPU/rt tcp %.2f us  "
               "ws %.2f us  rt per CPU ratio ws/tcp %.2f\n",
               conns[c], tcp, ws, ws / tcp, tcpu / 1000, wcpu / 1000, tcpu / wcpu);
    }
    return 0;
}
