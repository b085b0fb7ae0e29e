/*
 * TLS: tide's TLS server against references measured in the same run.
 *
 *   tls                         the driver (below)
 *   tls server tls|tcp [CERT KEY]
 *                               a tide server (tide_start_tls_server or
 *                               tide_start_server) on 127.0.0.1:0: prints
 *                               its port, serves until SIGTERM.  Each
 *                               connection reads a command line: "echo"
 *                               (echo until EOF), "sink" (read and drop
 *                               until EOF), "source N" (write N bytes);
 *                               nothing (the peer closes after the
 *                               handshake) just ends.
 *
 * The driver pins itself (the clients: plain blocking OpenSSL) to CPU 1 and
 * each server to CPU 0, and measures the server's CPU time
 * (/proc/PID/schedstat) over each workload; every figure is the best of 3
 * runs, servers interleaved:
 *
 *  1. full handshakes per second of server CPU, tide vs `openssl s_server`
 *     (ECDSA P-256 and RSA-2048 certificates; TLS 1.3, X25519, each
 *     server's default tickets): the client connects, handshakes, closes.
 *     Aim: tide >= 95% of s_server.  The floor: OpenSSL's server handshake
 *     alone, over a memory BIO pair in this process.
 *  2. resumed vs full handshake (tide): server CPU per handshake, the client
 *     offering the ticket of its previous connection or none; each
 *     connection echoes one byte (the client needs a read to get tickets).
 *     Aim: a resumed handshake >= 3x cheaper.
 *  3. bulk: GB/s per core of server CPU, the server receiving (decrypting,
 *     "sink") and sending (encrypting, "source") 256 MiB; the reference is
 *     AES-256-GCM itself (EVP, 16 KiB records) in this process.  Aim:
 *     >= 1.5 GB/s per core.
 *  4. 64-byte echo round trips, one connection, TLS vs plain TCP (both tide
 *     servers): server CPU per round trip.  Aim: TLS <= +2 us.  Also the
 *     simplest blocking OpenSSL echo server ("server ossl": SSL_read,
 *     SSL_write, no event loop): what OpenSSL itself costs.
 *  5. the same with 100 connections at once (tide clients in the driver,
 *     one message in flight each), where the server's wake-ups are shared
 *     and what remains is the per-message cost.
 *
 * BENCH_TLS_PARTS (e.g. "45") runs only those parts.
 *
 * BENCH_TLS_QUICK=1 cuts every workload by 10 (a smoke run).
 */
#include "bench.h"
#include "tide.h"
#include "tide/tls.h"
#include "../tests/tls_certs.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int g_quick;

/* ---------------------------------------------------------- the server */

static int srv_handler(tide_stream *s, void *arg)
{
    char line[64], buf[65536];
    ssize_t n;
    (void)arg;
    n = tide_stream_readline(s, line, sizeof line);
    if (n <= 0)
        return 0; /* a handshake-only client */
    if (!strncmp(line, "echo", 4)) {
        while ((n = tide_stream_read(s, buf, sizeof buf)) > 0)
            if (tide_stream_write(s, buf, (size_t)n) != n || tide_stream_drain(s) < 0)
                break;
    } else if (!strncmp(line, "sink", 4)) {
        while (tide_stream_read(s, buf, sizeof buf) > 0)
            ;
    } else if (!strncmp(line, "source", 6)) {
        long long left = atoll(line + 7);
        memset(buf, 'z', sizeof buf);
        while (left > 0) {
            size_t k = left < (long long)sizeof buf ? (size_t)left : sizeof buf;
            if (tide_stream_write(s, buf, k) < 0 || tide_stream_drain(s) < 0)
                break;
            left -= (long long)k;
        }
        tide_stream_flush(s);
    }
    return 0;
}

struct srv_cfg {
    int tls;
    const char *cert, *key;
};

static int srv_main(void *arg)
{
    struct srv_cfg *c = arg;
    tide_server_opts so;
    tide_tls_opts o;
    tide_server *srv;
    sigset_t set;
    int rc;
    tide_server_opts_init(&so);
    so.backlog = 1024;
    so.stack_size = 128 * 1024;
    tide_tls_opts_init(&o);
    o.cert_file = c->cert;
    o.key_file = c->key;
    rc = c->tls ? tide_start_tls_server("127.0.0.1", 0, srv_handler, NULL, &so, &o, &srv)
                : tide_start_server("127.0.0.1", 0, srv_handler, NULL, &so, &srv);
    if (rc < 0) {
        fprintf(stderr, "tls server: %s\n", tide_strerror(rc));
        return 1;
    }
    printf("%d\n", tide_server_port(srv));
    fflush(stdout);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    tide_signal_wait(&set);
    tide_server_close(srv, TIDE_SERVER_CANCEL);
    return 0;
}

/* The reference for the echo: the simplest OpenSSL echo server there is,
 * blocking, one connection at a time, no event loop ("echo\n" first, as
 * to the tide server). */
static int ossl_server(const char *cert, const char *key)
{
    SSL_CTX *sc = SSL_CTX_new(TLS_server_method());
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    signal(SIGPIPE, SIG_IGN);
    if (SSL_CTX_use_certificate_chain_file(sc, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(sc, key, SSL_FILETYPE_PEM) != 1)
        return 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 128) ||
        getsockname(l, (struct sockaddr *)&a, &len))
        return 1;
    printf("%d\n", ntohs(a.sin_port));
    fflush(stdout);
    for (;;) {
        char buf[16384];
        int fd = accept(l, NULL, NULL), n, skip = 5;
        SSL *ssl;
        if (fd < 0)
            continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ssl = SSL_new(sc);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) == 1)
            while ((n = SSL_read(ssl, buf, sizeof buf)) > 0) {
                int k = n < skip ? n : skip;
                skip -= k;
                if (n > k && SSL_write(ssl, buf + k, n - k) <= 0)
                    break;
            }
        SSL_free(ssl);
        close(fd);
    }
}

static int server_role(int argc, char **argv)
{
    struct srv_cfg c = {0, NULL, NULL};
    sigset_t set;
    if (argc < 3)
        return 2;
    if (!strcmp(argv[2], "ossl") && argc >= 5)
        return ossl_server(argv[3], argv[4]);
    c.tls = !strcmp(argv[2], "tls");
    if (c.tls && argc < 5)
        return 2;
    if (c.tls) {
        c.cert = argv[3];
        c.key = argv[4];
    }
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    return tide_run(srv_main, &c);
}

/* ------------------------------------------------------- the driver side */

static void pin(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    (void)sched_setaffinity(0, sizeof s, &s);
}

typedef struct child {
    pid_t pid;
    int port;
} child;

/* Starts argv pinned to CPU 0; the port is its first stdout line (tide) or
 * given (s_server: port > 0, then waits until it accepts). */
static child start(char *const argv[], int port)
{
    child c = {-1, port};
    int pfd[2];
    BENCH_CHECK(pipe(pfd) == 0, "pipe");
    fflush(stdout);
    c.pid = fork();
    if (c.pid == 0) {
        int nul = open("/dev/null", O_RDWR);
        pin(0);
        dup2(nul, 0);
        dup2(pfd[1], 1);
        if (port > 0)
            dup2(nul, 1);
        dup2(nul, 2);
        close(pfd[0]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(pfd[1]);
    if (port == 0) {
        char line[32] = "";
        ssize_t n = read(pfd[0], line, sizeof line - 1);
        BENCH_CHECK(n > 0, "server %s did not start", argv[0]);
        line[n] = '\0';
        c.port = atoi(line);
    } else {
        for (int i = 0; i < 200; i++) { /* until it listens */
            struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
            close(fd);
            if (ok)
                break;
            usleep(10000);
        }
    }
    close(pfd[0]);
    return c;
}

static void stop(child *c)
{
    int st;
    kill(c->pid, SIGTERM);
    waitpid(c->pid, &st, 0);
}

/* The server's time on CPU, ns. */
static int64_t cpu_of(pid_t pid)
{
    char path[64];
    long long ns = 0;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/schedstat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return 0;
    if (fscanf(f, "%lld", &ns) != 1)
        ns = 0;
    fclose(f);
    return ns;
}

static int tcp_connect(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    BENCH_CHECK(connect(fd, (struct sockaddr *)&a, sizeof a) == 0, "connect: %s", strerror(errno));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static SSL_CTX *g_cctx;

/* One TLS connection: handshake (offering *sess if set), then what the
 * caller does; returns the SSL (the caller closes). */
static SSL *tls_connect(int port, SSL_SESSION *sess, int *fdp)
{
    int fd = tcp_connect(port);
    SSL *ssl = SSL_new(g_cctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    if (sess)
        SSL_set_session(ssl, sess);
    BENCH_CHECK(SSL_connect(ssl) == 1, "SSL_connect");
    *fdp = fd;
    return ssl;
}

static void tls_close(SSL *ssl, int fd)
{
    SSL_free(ssl);
    close(fd);
}

/* 1. full handshakes: server CPU ns per handshake. */
static double handshakes(child *c, int n)
{
    int64_t c0 = cpu_of(c->pid);
    for (int i = 0; i < n; i++) {
        int fd;
        SSL *ssl = tls_connect(c->port, NULL, &fd);
        tls_close(ssl, fd);
    }
    usleep(20000); /* let the server finish the last one */
    return (double)(cpu_of(c->pid) - c0) / n;
}

/* 2. handshake + one echoed byte, resumed or not: server CPU ns each. */
static double echo_handshakes(child *c, int n, int resume, int *reused)
{
    SSL_SESSION *sess = NULL;
    int64_t c0 = cpu_of(c->pid);
    *reused = 0;
    for (int i = 0; i < n; i++) {
        int fd;
        char b;
        SSL *ssl = tls_connect(c->port, resume ? sess : NULL, &fd);
        *reused += SSL_session_reused(ssl);
        BENCH_CHECK(SSL_write(ssl, "echo\nx", 6) == 6 && SSL_read(ssl, &b, 1) == 1, "echo");
        SSL_SESSION_free(sess);
        sess = SSL_get1_session(ssl); /* the ticket that came before the byte */
        SSL_shutdown(ssl);
        tls_close(ssl, fd);
    }
    SSL_SESSION_free(sess);
    usleep(20000);
    return (double)(cpu_of(c->pid) - c0) / n;
}

/* 3. bulk: server CPU ns per byte, the server receiving (sink) or sending. */
static double bulk(child *c, size_t total, int sink)
{
    static char buf[16384];
    int fd;
    SSL *ssl = tls_connect(c->port, NULL, &fd);
    size_t done = 0;
    int64_t c0;
    char cmd[64];
    if (sink)
        snprintf(cmd, sizeof cmd, "sink\n");
    else
        snprintf(cmd, sizeof cmd, "source %zu\n", total);
    SSL_write(ssl, cmd, (int)strlen(cmd));
    c0 = cpu_of(c->pid);
    memset(buf, 'q', sizeof buf);
    while (done < total) {
        int k = sink ? SSL_write(ssl, buf, sizeof buf) : SSL_read(ssl, buf, sizeof buf);
        BENCH_CHECK(k > 0, "bulk %s", sink ? "write" : "read");
        done += (size_t)k;
    }
    SSL_shutdown(ssl);
    tls_close(ssl, fd);
    usleep(50000);
    return (double)(cpu_of(c->pid) - c0) / (double)total;
}

/* 4. 64-byte echo: server CPU ns per round trip. */
static double echo64(child *c, int tls, int n)
{
    char out[64], in[64];
    SSL *ssl = NULL;
    int fd;
    int64_t c0;
    memset(out, 'e', sizeof out);
    if (tls) {
        ssl = tls_connect(c->port, NULL, &fd);
        SSL_write(ssl, "echo\n", 5);
    } else {
        fd = tcp_connect(c->port);
        BENCH_CHECK(write(fd, "echo\n", 5) == 5, "write");
    }
    for (int i = 0; i < 200; i++) /* warm up */
        if (tls) {
            SSL_write(ssl, out, 64);
            for (int g = 0; g < 64;)
                g += SSL_read(ssl, in + g, 64 - g);
        }
    c0 = cpu_of(c->pid);
    for (int i = 0; i < n; i++) {
        if (tls) {
            BENCH_CHECK(SSL_write(ssl, out, 64) == 64, "write");
            for (int g = 0; g < 64;) {
                int k = SSL_read(ssl, in + g, 64 - g);
                BENCH_CHECK(k > 0, "read");
                g += k;
            }
        } else {
            BENCH_CHECK(write(fd, out, 64) == 64, "write");
            for (int g = 0; g < 64;) {
                ssize_t k = read(fd, in + g, 64 - (size_t)g);
                BENCH_CHECK(k > 0, "read");
                g += (int)k;
            }
        }
    }
    double per = (double)(cpu_of(c->pid) - c0) / n;
    if (ssl) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    close(fd);
    usleep(20000);
    return per;
}

/* 5. 64-byte echo over many connections at once (tide clients, one message
 * in flight each): server CPU ns per round trip. */
typedef struct many {
    int port, tls, conns, rts, ready, failed;
    const char *ca;
    tide_event go;
    pid_t pid;
    double per;
} many;

static int many_client(void *arg)
{
    many *m = arg;
    tide_stream *s;
    char out[64], in[64];
    int rc;
    memset(out, 'm', sizeof out);
    if (m->tls) {
        tide_tls_opts o;
        tide_tls_opts_init(&o);
        o.ca_file = m->ca;
        rc = tide_open_tls_connection("localhost", m->port, &o, &s);
    } else {
        rc = tide_open_connection("127.0.0.1", m->port, &s);
    }
    if (rc < 0) {
        m->failed++;
        return 0;
    }
    tide_stream_write(s, "echo\n", 5);
    for (int i = 0; i < 20; i++) /* warm up */
        if (tide_stream_write(s, out, 64) != 64 || tide_stream_readexactly(s, in, 64) != 64)
            m->failed++;
    m->ready++;
    tide_event_wait(&m->go);
    for (int i = 0; i < m->rts; i++)
        if (tide_stream_write(s, out, 64) != 64 || tide_stream_readexactly(s, in, 64) != 64) {
            m->failed++;
            break;
        }
    tide_stream_close(s);
    return 0;
}

static int many_main(void *arg)
{
    many *m = arg;
    tide_group g;
    tide_task_opts to;
    int64_t c0;
    tide_event_init(&m->go);
    tide_group_init(&g);
    tide_task_opts_init(&to);
    to.stack_size = 64 * 1024;
    for (int i = 0; i < m->conns; i++)
        tide_group_spawn(&g, many_client, m, &to, NULL);
    while (m->ready + m->failed < m->conns)
        tide_sleep(5);
    c0 = cpu_of(m->pid);
    tide_event_set(&m->go);
    tide_group_wait(&g);
    m->per = (double)(cpu_of(m->pid) - c0) / ((double)m->conns * m->rts);
    return 0;
}

static double echo_many(child *c, int tls, const char *ca, int conns, int rts)
{
    many m;
    memset(&m, 0, sizeof m);
    m.port = c->port;
    m.tls = tls;
    m.ca = ca;
    m.conns = conns;
    m.rts = rts;
    m.pid = c->pid;
    BENCH_CHECK(tide_run(many_main, &m) == 0 && m.failed == 0, "echo_many: %d failed", m.failed);
    return m.per;
}

/* The floor for 1: OpenSSL's own server handshake over a memory BIO pair
 * (no sockets, no loop), server CPU ns per handshake, in this process. */
static double handshake_floor(const char *cert, const char *key, int n)
{
    SSL_CTX *sc = SSL_CTX_new(TLS_server_method()), *cc = SSL_CTX_new(TLS_client_method());
    double ns = 0;
    SSL_CTX_use_certificate_chain_file(sc, cert);
    SSL_CTX_use_PrivateKey_file(sc, key, SSL_FILETYPE_PEM);
    SSL_CTX_set_num_tickets(sc, 1);
    for (int k = 0; k < n; k++) {
        BIO *b1, *b2;
        int64_t t0 = bench_cpu_ns();
        SSL *s = SSL_new(sc), *c;
        ns += (double)(bench_cpu_ns() - t0);
        c = SSL_new(cc);
        BIO_new_bio_pair(&b1, 0, &b2, 0);
        SSL_set_bio(s, b1, b1);
        SSL_set_bio(c, b2, b2);
        SSL_set_accept_state(s);
        SSL_set_connect_state(c);
        for (int i = 0; i < 4 && !(SSL_is_init_finished(s) && SSL_is_init_finished(c)); i++) {
            SSL_do_handshake(c);
            t0 = bench_cpu_ns();
            SSL_do_handshake(s);
            ns += (double)(bench_cpu_ns() - t0);
        }
        BENCH_CHECK(SSL_is_init_finished(s), "in-memory handshake");
        t0 = bench_cpu_ns();
        SSL_free(s);
        ns += (double)(bench_cpu_ns() - t0);
        SSL_free(c);
    }
    SSL_CTX_free(sc);
    SSL_CTX_free(cc);
    return ns / n;
}

/* The reference for bulk: AES-256-GCM over 16 KiB records, ns per byte. */
static double aes_gcm_ns_per_byte(void)
{
    static unsigned char in[16384], out[16384 + 16];
    unsigned char key[32] = {1}, iv[12] = {2}, tag[16];
    EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
    size_t total = g_quick ? 32u << 20 : 256u << 20, done = 0;
    int64_t t0;
    int len;
    EVP_EncryptInit_ex(x, EVP_aes_256_gcm(), NULL, key, iv);
    t0 = bench_cpu_ns();
    while (done < total) {
        EVP_EncryptInit_ex(x, NULL, NULL, NULL, iv);
        EVP_EncryptUpdate(x, out, &len, in, sizeof in);
        EVP_EncryptFinal_ex(x, out + len, &len);
        EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, 16, tag);
        done += sizeof in;
    }
    double r = (double)(bench_cpu_ns() - t0) / (double)total;
    EVP_CIPHER_CTX_free(x);
    return r;
}

int main(int argc, char **argv)
{
    char dir[] = "/tmp/tide-tls-bench-XXXXXX", cert[2][128], key[2][128], self[512];
    const char *kind[2] = {"ECDSA P-256", "RSA-2048"};
    double tide_hs[2] = {1e18, 1e18}, ossl_hs[2] = {1e18, 1e18}, floor_hs[2] = {1e18, 1e18};
    double full = 1e18, resumed = 1e18, rx = 1e18, tx = 1e18, e_tls = 1e18, e_tcp = 1e18;
    double m_tls = 1e18, m_tcp = 1e18, e_ossl = 1e18, full_rsa = 1e18, resumed_rsa = 1e18;
    char ca[128];
    int nhs, nres, nrt, reused = 0;
    const char *parts = "12345";
    size_t nbulk;

    if (argc > 1 && !strcmp(argv[1], "server"))
        return server_role(argc, argv);
    g_quick = getenv("BENCH_TLS_QUICK") && atoi(getenv("BENCH_TLS_QUICK"));
    if (getenv("BENCH_TLS_PARTS"))
        parts = getenv("BENCH_TLS_PARTS");
    nhs = g_quick ? 40 : 400;
    nres = g_quick ? 40 : 400;
    nrt = g_quick ? 2000 : 20000;
    nbulk = g_quick ? 32u << 20 : 256u << 20;
    signal(SIGPIPE, SIG_IGN);
    BENCH_CHECK(mkdtemp(dir) && tt_certs_make(dir) == 0, "certificates");
    snprintf(cert[0], sizeof cert[0], "%s/server.pem", dir);
    snprintf(key[0], sizeof key[0], "%s/server.key", dir);
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    snprintf(cert[1], sizeof cert[1], "%s/rsa.pem", dir);
    snprintf(key[1], sizeof key[1], "%s/rsa.key", dir);
    {
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        BENCH_CHECK(n > 0, "readlink");
        self[n] = '\0';
    }
    pin(1);
    g_cctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(g_cctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(g_cctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);

    printf("tls: OpenSSL %s; server on CPU 0, clients on CPU 1; best of 3\n",
           OpenSSL_version(OPENSSL_VERSION));
    for (int rep = 0; rep < 3; rep++) {
        for (int k = 0; k < 2 && strchr(parts, '1'); k++) {
            char port[16], acc[32];
            char *targv[] = {self, "server", "tls", cert[k], key[k], NULL};
            child t = start(targv, 0);
            tide_hs[k] = bench_min(tide_hs[k], handshakes(&t, nhs));
            stop(&t);
            /* s_server listens on a port of our choosing: tide's, now free */
            snprintf(port, sizeof port, "%d", t.port);
            snprintf(acc, sizeof acc, "127.0.0.1:%s", port);
            char *oargv[] = {"openssl", "s_server", "-accept", acc, "-cert", cert[k], "-key",
                             key[k], "-quiet", NULL};
            child o = start(oargv, t.port);
            ossl_hs[k] = bench_min(ossl_hs[k], handshakes(&o, nhs));
            stop(&o);
            floor_hs[k] = bench_min(floor_hs[k], handshake_floor(cert[k], key[k], nhs / 4));
        }
        {
            char *targv[] = {self, "server", "tls", cert[0], key[0], NULL};
            char *pargv[] = {self, "server", "tcp", NULL};
            child t = start(targv, 0), p;
            int r;
            if (strchr(parts, '2')) {
                char *rargv[] = {self, "server", "tls", cert[1], key[1], NULL};
                child rs = start(rargv, 0);
                full = bench_min(full, echo_handshakes(&t, nres, 0, &r));
                resumed = bench_min(resumed, echo_handshakes(&t, nres, 1, &reused));
                full_rsa = bench_min(full_rsa, echo_handshakes(&rs, nres / 2, 0, &r));
                resumed_rsa = bench_min(resumed_rsa, echo_handshakes(&rs, nres / 2, 1, &r));
                stop(&rs);
            }
            if (strchr(parts, '3')) {
                rx = bench_min(rx, bulk(&t, nbulk, 1));
                tx = bench_min(tx, bulk(&t, nbulk, 0));
            }
            if (strchr(parts, '4'))
                e_tls = bench_min(e_tls, echo64(&t, 1, nrt));
            if (strchr(parts, '5'))
                m_tls = bench_min(m_tls, echo_many(&t, 1, ca, 100, nrt / 100));
            stop(&t);
            if (strchr(parts, '4')) {
                char *oargv[] = {self, "server", "ossl", cert[0], key[0], NULL};
                child o = start(oargv, 0);
                e_ossl = bench_min(e_ossl, echo64(&o, 1, nrt));
                stop(&o);
            }
            if (strchr(parts, '4') || strchr(parts, '5')) {
                p = start(pargv, 0);
                if (strchr(parts, '4'))
                    e_tcp = bench_min(e_tcp, echo64(&p, 0, nrt));
                if (strchr(parts, '5'))
                    m_tcp = bench_min(m_tcp, echo_many(&p, 0, ca, 100, nrt / 100));
                stop(&p);
            }
        }
    }
    {
        double aes = strchr(parts, '3') ? aes_gcm_ns_per_byte() : 1;
        printf("\n");
        if (strchr(parts, '1'))
            printf("1. full handshakes per second of server CPU (TLS 1.3)\n");
        for (int k = 0; k < 2 && strchr(parts, '1'); k++)
            printf("   %-12s tide %7.0f/s   openssl s_server %7.0f/s   ratio %.2f (aim >= 0.95);"
                   "\n                OpenSSL alone in memory (no socket, no loop) %.0f/s\n",
                   kind[k], 1e9 / tide_hs[k], 1e9 / ossl_hs[k], ossl_hs[k] / tide_hs[k],
                   1e9 / floor_hs[k]);
        if (strchr(parts, '2'))
            printf("2. server CPU per handshake (+1-byte echo), tide: ECDSA full %.0f us, resumed"
                   " %.0f us (%d/%d resumed): ratio full/resumed %.2f (aim >= 3);\n"
                   "   RSA-2048 full %.0f us, resumed %.0f us: ratio %.2f\n",
                   full / 1e3, resumed / 1e3, reused, nres, full / resumed, full_rsa / 1e3,
                   resumed_rsa / 1e3, full_rsa / resumed_rsa);
        if (strchr(parts, '3'))
            printf("3. bulk, GB/s per core of server CPU: receive %.2f, send %.2f (aim >= 1.5);\n"
               "   AES-256-GCM alone %.2f GB/s: ratios %.2f, %.2f\n",
               1 / rx, 1 / tx, 1 / aes, aes / rx, aes / tx);
        if (strchr(parts, '4'))
            printf("4. 64-byte echo, server CPU per round trip: TLS %.2f us, TCP %.2f us,"
               " +%.2f us (aim <= +2);\n   a blocking OpenSSL echo server (no loop) %.2f us:"
               " tide TLS / it %.2f\n",
               e_tls / 1e3, e_tcp / 1e3, (e_tls - e_tcp) / 1e3, e_ossl / 1e3, e_tls / e_ossl);
        if (strchr(parts, '5'))
            printf("5. the same over 100 connections at once: TLS %.2f us, TCP %.2f us, +%.2f us"
               " (ratio %.2f)\n",
               m_tls / 1e3, m_tcp / 1e3, (m_tls - m_tcp) / 1e3, m_tls / m_tcp);
    }
    SSL_CTX_free(g_cctx);
    for (int k = 0; k < 2; k++) {
        unlink(cert[k]);
        unlink(key[k]);
    }
    {
        const char *rest[] = {"ca", "other", "expired", "wrong", "rogue", "client"};
        char p[256];
        for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++) {
            snprintf(p, sizeof p, "%s/%s.pem", dir, rest[i]);
            unlink(p);
            snprintf(p, sizeof p, "%s/%s.key", dir, rest[i]);
            unlink(p);
        }
    }
    rmdir(dir);
    return 0;
}
