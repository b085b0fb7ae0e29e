/*
 * tls_client.c -- a small `openssl s_client`: connects over TLS, says what
 * was negotiated, then copies stdin to the server and the server's answer
 * to stdout.
 *
 *   tls_client HOST PORT [--cafile FILE] [--insecure] [--alpn LIST]
 *                        [--servername NAME] [--cert FILE --key FILE]
 *
 *   e.g.  printf 'GET / HTTP/1.0\r\n\r\n' | tls_client example.org 443
 *         tls_client localhost 8443 --cafile ca.pem --alpn http/1.1
 *
 * The server's certificate is verified against the system's CA store (or
 * --cafile) and the host name (HOST, or --servername, which is also sent
 * as SNI); --insecure turns that off (anyone on the path could read and
 * change the traffic: for tests only).  On stderr it prints the protocol
 * version, the cipher suite, the ALPN protocol and the subject of the
 * server's certificate, or why the handshake failed ("certificate refused
 * (hostname mismatch)...").  At the end of stdin it sends close_notify and
 * keeps printing what the server sends until the server closes.  Exit
 * status 0 if the server closed cleanly (close_notify), 1 on any error,
 * including a connection cut without close_notify (TIDE_TLS_ERR_TRUNCATED:
 * the answer may be incomplete), 2 for bad arguments.
 *
 * Two tasks share the one TLS stream: one reads stdin and writes, the
 * other reads the server and prints: TLS lets one read while the other
 * writes.
 */
#include <tide.h>
#include <tide/tls.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct config {
    const char *host, *servername, *cafile, *alpn, *cert, *key;
    int port, insecure;
};

struct session {
    tide_stream *tls;
    int in_rc;   /* stdin -> server */
    ssize_t out; /* server -> stdout: 0 clean end, < 0 the error */
};

/* stdin -> server; close_notify at the end of stdin. */
static int pump_stdin(void *arg)
{
    struct session *se = arg;
    tide_stream *in;
    char buf[16384];
    ssize_t n;
    int rc = tide_stream_open(&in, 0, NULL);

    if (rc < 0) {
        se->in_rc = rc;
        return 0;
    }
    while ((n = tide_stream_read(in, buf, sizeof buf)) > 0) {
        if (tide_stream_write(se->tls, buf, (size_t)n) < 0 || tide_stream_drain(se->tls) < 0)
            break;
    }
    se->in_rc = n < 0 ? (int)n : tide_stream_write_eof(se->tls);
    (void)tide_stream_flush(se->tls);
    (void)tide_fd_forget(0); /* stdin stays open for whoever has it after us */
    return 0;
}

static int client_main(void *arg)
{
    const struct config *cfg = arg;
    struct session se = {NULL, 0, 0};
    tide_tls_opts o;
    tide_task *pump;
    char buf[16384], why[256], subject[256];
    ssize_t n;
    int rc;

    rc = tide_open_connection(cfg->host, cfg->port, &se.tls);
    if (rc < 0) {
        fprintf(stderr, "tls_client: cannot connect to %s:%d: %s\n", cfg->host, cfg->port,
                tide_strerror(rc));
        return 1;
    }
    tide_tls_opts_init(&o);
    o.server_name = cfg->servername ? cfg->servername : cfg->host;
    o.ca_file = cfg->cafile;
    o.alpn = cfg->alpn;
    o.cert_file = cfg->cert;
    o.key_file = cfg->key;
    o.insecure_skip_verify = cfg->insecure;
    o.handshake_timeout_ms = 10000;
    rc = tide_tls_start(se.tls, TIDE_TLS_CLIENT, &o);
    if (rc < 0) {
        tide_tls_error(se.tls, why, sizeof why);
        fprintf(stderr, "tls_client: handshake with %s:%d failed: %s%s%s\n", cfg->host, cfg->port,
                tide_strerror(rc), why[0] ? ": " : "", why);
        tide_stream_close(se.tls);
        return 1;
    }
    tide_tls_peer_subject(se.tls, subject, sizeof subject);
    fprintf(stderr,
            "* connected to %s:%d\n* protocol: %s\n* cipher: %s\n* ALPN: %s\n"
            "* server certificate: %s%s\n* session resumed: %s\n",
            cfg->host, cfg->port, tide_tls_version(se.tls), tide_tls_cipher(se.tls),
            tide_tls_alpn(se.tls)[0] ? tide_tls_alpn(se.tls) : "(none)",
            subject[0] ? subject : "(none)", cfg->insecure ? " (NOT VERIFIED: --insecure)" : "",
            tide_tls_session_reused(se.tls) ? "yes" : "no");

    rc = tide_create_task(&pump, pump_stdin, &se);
    if (rc < 0) {
        tide_stream_close(se.tls);
        return 1;
    }
    /* server -> stdout, until the server closes */
    while ((n = tide_stream_read(se.tls, buf, sizeof buf)) > 0)
        if (tide_write(1, buf, (size_t)n) != n)
            break;
    se.out = n;
    tide_cancel(pump); /* the server is done: stop reading stdin */
    tide_await(pump);
    rc = tide_tls_error(se.tls, why, sizeof why);
    tide_stream_close(se.tls);
    if (se.out < 0) {
        fprintf(stderr, "tls_client: %s%s%s\n", tide_strerror((int)se.out), rc ? ": " : "",
                rc ? why : "");
        return 1;
    }
    fprintf(stderr, "* closed by the server (close_notify)\n");
    return 0;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: tls_client HOST PORT [--cafile FILE] [--insecure] [--alpn LIST]\n"
            "                            [--servername NAME] [--cert FILE --key FILE]\n"
            "  Connects over TLS, prints what was negotiated (stderr), then copies stdin to\n"
            "  the server and its answer to stdout.\n");
    return 2;
}

int main(int argc, char **argv)
{
    struct config cfg;
    const char *pos[2];
    int npos = 0, i, rc;
    char *end;

    memset(&cfg, 0, sizeof cfg);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--insecure"))
            cfg.insecure = 1;
        else if (!strcmp(a, "--cafile") && i + 1 < argc)
            cfg.cafile = argv[++i];
        else if (!strcmp(a, "--alpn") && i + 1 < argc)
            cfg.alpn = argv[++i];
        else if (!strcmp(a, "--servername") && i + 1 < argc)
            cfg.servername = argv[++i];
        else if (!strcmp(a, "--cert") && i + 1 < argc)
            cfg.cert = argv[++i];
        else if (!strcmp(a, "--key") && i + 1 < argc)
            cfg.key = argv[++i];
        else if (a[0] != '-' && npos < 2)
            pos[npos++] = a;
        else
            return usage();
    }
    if (npos != 2)
        return usage();
    cfg.host = pos[0];
    cfg.port = (int)strtol(pos[1], &end, 10);
    if (*end || cfg.port <= 0 || cfg.port > 65535)
        return usage();
    rc = tide_run(client_main, &cfg);
    return rc < 0 ? 1 : rc;
}
