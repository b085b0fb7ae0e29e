/*
 * tls_demo.c -- demo.c over TLS: an echo server and many clients in one
 * process, on one thread, every connection encrypted, every byte checked.
 *
 *   tls_demo [--quick] [--clients N] [--messages M] [--help]
 *
 * It makes a throw-away certificate for "localhost" with the openssl tool
 * (in a temporary directory, removed at the end), starts a TLS echo server
 * on 127.0.0.1 (tide_start_tls_server) and runs the clients twice:
 *
 *   round 1: N clients connect at the same time (full handshakes), each
 *            sends M messages of 1..4096 bytes from its own pseudo-random
 *            sequence and checks each echo;
 *   round 2: the same again.  The clients share one tide_tls_ctx, whose
 *            session cache kept the tickets the server sent in round 1, so
 *            these handshakes are resumed (abbreviated, no certificate).
 *
 * The certificate is verified for real: the clients trust it as their CA
 * and check the name "localhost".  At the end: a report and "all checks
 * passed" (exit status 0), or the failures (exit status 1).
 *
 *   --quick         50 clients x 10 messages (what ctest runs)
 *   --clients N     number of clients (default 200)
 *   --messages M    messages per client (default 50)
 */
#include <tide.h>
#include <tide/tls.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define MAX_MESSAGE 4096
#define TASK_STACK (64 * 1024)

static int g_failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            g_failures++;                                                                          \
            fprintf(stderr, "tls_demo.c:%d: CHECK FAILED: %s: ", __LINE__, #cond);                 \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static uint32_t rand_next(uint32_t *state)
{
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

/* --------------------------------------------------------------- server */

static int echo_handler(tide_stream *s, void *arg)
{
    char buf[MAX_MESSAGE];
    ssize_t n;
    (void)arg;
    while ((n = tide_stream_read(s, buf, sizeof buf)) > 0)
        if (tide_stream_write(s, buf, (size_t)n) != n || tide_stream_drain(s) < 0)
            break;
    return 0;
}

/* -------------------------------------------------------------- clients */

struct run {
    int port, clients, messages;
    tide_tls_ctx *ctx;
    unsigned long ok, resumed, bytes;
};

struct client {
    struct run *run;
    uint32_t seed;
};

static int client(void *arg)
{
    struct client *c = arg;
    struct run *r = c->run;
    tide_tls_opts o;
    tide_stream *s;
    uint8_t out[MAX_MESSAGE], in[MAX_MESSAGE];
    uint32_t seed = c->seed;
    int rc;

    tide_tls_opts_init(&o);
    o.ctx = r->ctx;
    rc = tide_open_tls_connection("localhost", r->port, &o, &s);
    CHECK(rc == 0, "connect: %s", tide_strerror(rc));
    if (rc < 0)
        return 0;
    if (tide_tls_session_reused(s))
        r->resumed++;
    for (int m = 0; m < r->messages; m++) {
        size_t len = 1 + rand_next(&seed) % MAX_MESSAGE;
        ssize_t n;
        for (size_t i = 0; i < len; i++)
            out[i] = (uint8_t)rand_next(&seed);
        n = tide_stream_write(s, out, len);
        if (n == (ssize_t)len)
            n = tide_stream_readexactly(s, in, len);
        CHECK(n == (ssize_t)len && !memcmp(in, out, len), "message %d: %s", m,
              n < 0 ? tide_strerror((int)n) : "wrong bytes");
        if (n != (ssize_t)len)
            break;
        r->bytes += 2 * len;
    }
    tide_stream_close(s);
    r->ok++;
    return 0;
}

static double round_of_clients(struct run *r, struct client *cs, const char *what)
{
    tide_task_opts to;
    tide_group g;
    double t0 = now_ms(), ms;
    unsigned long ok0 = r->ok, res0 = r->resumed;

    tide_group_init(&g);
    tide_task_opts_init(&to);
    to.stack_size = TASK_STACK;
    for (int i = 0; i < r->clients; i++)
        tide_group_spawn(&g, client, &cs[i], &to, NULL);
    tide_group_wait(&g);
    ms = now_ms() - t0;
    printf("  %s: %lu connections in %.0f ms, %lu of them resumed\n", what, r->ok - ok0, ms,
           r->resumed - res0);
    return ms;
}

/* ------------------------------------------------------- the certificate */

/* openssl req: a self-signed certificate for localhost in dir. */
static int make_certificate(const char *dir, char *cert, char *key, size_t cap)
{
    tide_process_opts po;
    tide_process *p;
    char *out = NULL;
    int rc;

    snprintf(cert, cap, "%s/cert.pem", dir);
    snprintf(key, cap, "%s/key.pem", dir);
    const char *argv[] = {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                          "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
                          "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-days", "2",
                          "-keyout", key, "-out", cert, NULL};
    tide_process_opts_init(&po);
    po.stdout_mode = TIDE_PROC_PIPE;
    po.stderr_mode = TIDE_PROC_STDOUT;
    rc = tide_process_spawn(&p, argv, &po);
    if (rc < 0)
        return rc;
    rc = tide_process_communicate(p, NULL, 0, &out, NULL, NULL, NULL);
    if (rc != 0)
        fprintf(stderr, "tls_demo: openssl req failed:\n%s", out ? out : "");
    free(out);
    tide_process_free(p);
    return rc == 0 ? 0 : -1;
}

static int demo_main(void *arg)
{
    struct run *r = arg;
    char dir[] = "/tmp/tls_demo-XXXXXX", cert[128], key[128];
    tide_server_opts so;
    tide_tls_opts o;
    tide_server *srv;
    struct client *cs;
    double t1, t2;
    int rc;

    if (!mkdtemp(dir) || make_certificate(dir, cert, key, sizeof cert) < 0) {
        fprintf(stderr, "tls_demo: no certificate (is the openssl tool installed?)\n");
        return 1;
    }
    tide_server_opts_init(&so);
    so.backlog = 4096;
    so.stack_size = TASK_STACK;
    tide_tls_opts_init(&o);
    o.cert_file = cert;
    o.key_file = key;
    rc = tide_start_tls_server("127.0.0.1", 0, echo_handler, NULL, &so, &o, &srv);
    CHECK(rc == 0, "start_tls_server: %s", tide_strerror(rc));
    if (rc < 0)
        return 1;
    r->port = tide_server_port(srv);
    tide_tls_opts_init(&o);
    o.ca_file = cert; /* self-signed: it is its own CA */
    rc = tide_tls_ctx_new(&r->ctx, TIDE_TLS_CLIENT, &o);
    CHECK(rc == 0, "client context: %s", tide_strerror(rc));
    cs = calloc((size_t)r->clients, sizeof *cs);
    for (int i = 0; i < r->clients; i++) {
        cs[i].run = r;
        cs[i].seed = 2463534242u ^ (uint32_t)(i * 2654435761u);
    }
    printf("tls_demo: TLS echo server on 127.0.0.1:%d, %d clients x %d messages\n", r->port,
           r->clients, r->messages);
    t1 = round_of_clients(r, cs, "round 1 (full handshakes)   ");
    t2 = round_of_clients(r, cs, "round 2 (resumed handshakes)");
    rc = tide_server_close(srv, TIDE_SERVER_WAIT);
    CHECK(rc == 0, "server close: %s", tide_strerror(rc));
    tide_tls_ctx_free(r->ctx);
    free(cs);
    unlink(cert);
    unlink(key);
    rmdir(dir);

    CHECK(r->ok == 2ul * (unsigned long)r->clients, "%lu of %d connections completed", r->ok,
          2 * r->clients);
    CHECK(r->resumed >= (unsigned long)r->clients * 9 / 10, "only %lu resumed in round 2",
          r->resumed);
    printf("  %lu bytes echoed and checked; round 2 took %.0f%% of round 1's time\n", r->bytes,
           t1 > 0 ? 100.0 * t2 / t1 : 0.0);
    if (g_failures) {
        printf("tls_demo: %d checks FAILED\n", g_failures);
        return 1;
    }
    printf("tls_demo: all checks passed\n");
    return 0;
}

int main(int argc, char **argv)
{
    struct run r;
    struct rlimit rl;

    memset(&r, 0, sizeof r);
    r.clients = 200;
    r.messages = 50;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) {
            r.clients = 50;
            r.messages = 10;
        } else if (!strcmp(argv[i], "--clients") && i + 1 < argc) {
            r.clients = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--messages") && i + 1 < argc) {
            r.messages = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: tls_demo [--quick] [--clients N] [--messages M]\n");
            return 2;
        }
    }
    if (r.clients < 1 || r.messages < 1)
        return 2;
    /* two fds per connection (both ends live here) */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)(2 * r.clients + 64)) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)(2 * r.clients + 64) ? rl.rlim_max
                                                                  : (rlim_t)(2 * r.clients + 64);
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    return tide_run(demo_main, &r);
}
