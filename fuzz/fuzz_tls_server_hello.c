/*
 * libFuzzer harness: arbitrary bytes as the client's side of a TLS server
 * handshake, through tide's stream mode (TLS over a stream, OpenSSL on a
 * BIO of ours; the bytes are read ahead by the plain stream and handed
 * over, as after STARTTLS).
 *
 * Each input: a socketpair; "STARTTLS\n" + the input is written to one end
 * and that end is shut; on the other, a tide stream reads the line (and,
 * with it, the input: the read-ahead the TLS layer must hand over), then
 * tide_tls_start as a server handshakes against the bytes until they end.
 * Whatever happens must be a clean error (or, for a real ClientHello
 * followed by nothing, a truncation): no crash, no leak, no sanitizer
 * report, and every fd closed.
 *
 * Build (clang; libtide.a built with TLS, so OpenSSL is linked too):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
 *       fuzz/fuzz_tls_server_hello.c build/libtide.a -lssl -lcrypto -lpthread \
 *       -o fuzz_tls_server_hello
 * (coverage feedback needs libtide built with -fsanitize=fuzzer-no-link;
 * OpenSSL itself is the system's, not instrumented)
 *   ./fuzz_tls_server_hello -max_total_time=60 fuzz/corpus/tls_server_hello
 * (seeds: real ClientHellos, TLS 1.3 and 1.2, from Python's ssl)
 * With -DTIDE_FUZZ_STANDALONE (no libFuzzer): runs the files named on the
 * command line (or a few built-in inputs) once each.
 */
#include <tide.h>
#include <tide/tls.h>

#include "../tests/tls_certs.h" /* throw-away certificates */

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static tide_tls_ctx *g_ctx;

typedef struct one {
    const uint8_t *data;
    size_t size;
} one;

static int run_one(void *arg)
{
    one *o = arg;
    tide_stream *s;
    tide_tls_opts opts;
    char line[16];
    int sv[2];

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return 0;
    /* the client side: the bytes, then the end (small inputs fit the
     * socket buffer; libFuzzer's default max_len is 4096) */
    if (write(sv[0], "STARTTLS\n", 9) != 9 ||
        (o->size && write(sv[0], o->data, o->size) != (ssize_t)o->size)) {
        close(sv[0]);
        close(sv[1]);
        return 0;
    }
    shutdown(sv[0], SHUT_WR);
    if (tide_stream_open(&s, sv[1], NULL) < 0) {
        close(sv[0]);
        close(sv[1]);
        return 0;
    }
    if (tide_stream_readline(s, line, sizeof line) == 9) {
        tide_scope sc;
        tide_tls_opts_init(&opts);
        opts.ctx = g_ctx;
        opts.handshake_timeout_ms = 2000;
        tide_timeout_begin(&sc, 3000);
        if (tide_tls_start(s, TIDE_TLS_SERVER, &opts) == 0) {
            char buf[256];
            while (tide_stream_read(s, buf, sizeof buf) > 0) /* records after a handshake? */
                ;
        }
        tide_timeout_end(&sc);
    }
    tide_stream_close(s);
    close(sv[0]);
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char dir[] = "/tmp/tide-fuzz-tls-XXXXXX", cert[128], key[128];
    tide_tls_opts o;
    const char *names[] = {"ca", "server", "rsa", "other", "expired", "wrong", "rogue", "client"};

    (void)argc;
    (void)argv;
    signal(SIGPIPE, SIG_IGN);
    if (!mkdtemp(dir) || tt_certs_make(dir) < 0)
        abort();
    snprintf(cert, sizeof cert, "%s/server.pem", dir);
    snprintf(key, sizeof key, "%s/server.key", dir);
    tide_tls_opts_init(&o);
    o.cert_file = cert;
    o.key_file = key;
    o.alpn = "h2,http/1.1";
    if (tide_tls_ctx_new(&g_ctx, TIDE_TLS_SERVER, &o) < 0)
        abort();
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char p[160];
        snprintf(p, sizeof p, "%s/%s.pem", dir, names[i]);
        unlink(p);
        snprintf(p, sizeof p, "%s/%s.key", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one o = {data, size};
    if (size > 60000)
        return 0; /* more than a socketpair buffer takes without a reader */
    (void)tide_run(run_one, &o);
    return 0;
}

#ifdef TIDE_FUZZ_STANDALONE
int main(int argc, char **argv)
{
    static const uint8_t hello_start[] = {0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c,
                                          0x03, 0x03};
    LLVMFuzzerInitialize(&argc, &argv);
    if (argc < 2) {
        LLVMFuzzerTestOneInput((const uint8_t *)"", 0);
        LLVMFuzzerTestOneInput((const uint8_t *)"GET / HTTP/1.0\r\n\r\n", 18);
        LLVMFuzzerTestOneInput(hello_start, sizeof hello_start);
    }
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        static uint8_t buf[60000];
        size_t n;
        if (!f)
            continue;
        n = fread(buf, 1, sizeof buf, f);
        fclose(f);
        LLVMFuzzerTestOneInput(buf, n);
    }
    tide_tls_ctx_free(g_ctx);
    return 0;
}
#endif
