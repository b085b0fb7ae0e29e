/*
 * The public TLS calls: start_tls on a stream (in place), TLS connections
 * and servers, shutdown, sendfile, and what a handshake agreed on.
 *
 * start_tls flushes the stream, puts the TLS transport in place of its
 * transport (tide__stream_layer: on the fd itself when the stream is a
 * socket that read nothing ahead, else over an inner stream holding the
 * bytes read ahead), then runs the handshake in the caller's task within
 * its scopes and the handshake timeout.  Servers are tide_start_server
 * with a hook that does this before each handler.
 */
#include "tls_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#define SERVER_HANDSHAKE_TIMEOUT_MS 10000
#define SENDFILE_CHUNK (64 * 1024)

/* --------------------------------------------------------------- start_tls */

typedef struct layer_args {
    tide_tls_ctx *ctx; /* our reference, given to the transport */
    int role;
    const char *name;
    const char *key;
} layer_args;

static int make_layer(void *arg, const tide__fd_transport *fdt, tide_stream *inner,
                      tide__transport **out)
{
    layer_args *a = arg;
    tide__tls *t;
    int rc;

    tide__tls_ctx_ref(a->ctx); /* one for the transport; the caller keeps its own */
    rc = tide__tls_new(&t, a->ctx, a->role, a->name, a->key, fdt, inner);
    if (rc < 0)
        return rc;
    *out = &t->base;
    return 0;
}

/* The session cache's key: the name and the peer's address ("name|addr"),
 * so that two servers of one name at different addresses do not share. */
static void session_key(tide_stream *s, const char *name, char *key, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char addr[INET6_ADDRSTRLEN + 8] = "";

    if (tide_stream_peer_addr(s, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            char ip[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
            snprintf(addr, sizeof addr, "%s:%u", ip, ntohs(a->sin_port));
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            char ip[INET6_ADDRSTRLEN];
            inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
            snprintf(addr, sizeof addr, "[%s]:%u", ip, ntohs(a->sin6_port));
        } else if (ss.ss_family == AF_UNIX) {
            snprintf(addr, sizeof addr, "unix");
        }
    }
    snprintf(key, cap, "%s|%s", name ? name : "", addr);
}

static int handshake(tide__tls *t, tide_task *cur, int64_t timeout_ms)
{
    tide_scope sc;
    int rc, trc;

    if (timeout_ms <= 0)
        return tide__tls_handshake(t, cur);
    tide_timeout_begin(&sc, timeout_ms);
    rc = tide__tls_handshake(t, cur);
    trc = tide_timeout_end(&sc);
    if (rc == -ETIMEDOUT && trc == -ETIMEDOUT)
        snprintf(t->reason, sizeof t->reason, "no handshake within %lld ms",
                 (long long)timeout_ms);
    return rc;
}

int tide_tls_start(tide_stream *s, int role, const tide_tls_opts *o)
{
    tide_task *cur = tide__current();
    layer_args a;
    char key[512];
    int64_t timeout;
    tide__tls *t;
    int rc;

    if (!s || (role != TIDE_TLS_CLIENT && role != TIDE_TLS_SERVER))
        return -EINVAL;
    if (!cur)
        return -EPERM;
    if (tide__tls_of(s) && !(tide__tls_of(s)->hs_done))
        return -EBUSY; /* TLS over TLS is fine, over a half-made one not */
    rc = tide_stream_flush(s); /* what the plain protocol queued goes first */
    if (rc < 0)
        return rc;
    rc = tide__tls_ctx_for(&a.ctx, role, o, NULL, 0);
    if (rc < 0)
        return rc;
    a.role = role;
    a.name = o ? o->server_name : NULL;
    a.key = NULL;
    if (role == TIDE_TLS_CLIENT && !a.ctx->no_resumption) {
        session_key(s, a.name, key, sizeof key);
        a.key = key;
    }
    rc = tide__stream_layer(s, make_layer, &a);
    tide_tls_ctx_free(a.ctx);
    if (rc < 0)
        return rc;
    t = tide__tls_of(s);
    timeout = o ? o->handshake_timeout_ms : 0;
    if (timeout == 0 && role == TIDE_TLS_SERVER)
        timeout = SERVER_HANDSHAKE_TIMEOUT_MS;
    /* A close from another task meanwhile wakes the handshake (-EBADF) and
     * frees s and t only once it has left. */
    tide__stream_hold(s);
    rc = handshake(t, cur, timeout);
    tide__stream_release(s);
    return rc;
}

int tide_open_tls_connection(const char *host, int port, const tide_tls_opts *o, tide_stream **out)
{
    tide_tls_opts d;
    tide_stream *s;
    int rc;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (o)
        d = *o;
    else
        tide_tls_opts_init(&d);
    if (!d.server_name)
        d.server_name = host;
    rc = tide_open_connection(host, port, &s);
    if (rc < 0)
        return rc;
    rc = tide_tls_start(s, TIDE_TLS_CLIENT, &d);
    if (rc < 0) {
        tide__stream_abort(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* ----------------------------------------------------------------- servers */

typedef struct server_tls {
    tide_tls_ctx *ctx;
    int64_t timeout_ms;
} server_tls;

static int server_conn_start(tide_stream *s, void *arg)
{
    server_tls *st = arg;
    tide_tls_opts o;

    tide_tls_opts_init(&o);
    o.ctx = st->ctx;
    o.handshake_timeout_ms = st->timeout_ms;
    return tide_tls_start(s, TIDE_TLS_SERVER, &o);
}

static void server_tls_free(void *arg)
{
    server_tls *st = arg;
    tide_tls_ctx_free(st->ctx);
    tide__free(st);
}

/* The hooks of a TLS server: its context for the server's life. */
static int server_hooks(tide__server_hooks *h, const tide_tls_opts *o)
{
    server_tls *st;
    int rc;

    if (!o)
        return -EINVAL;
    if (!tide__tls_loop)
        return -EPERM;
    st = tide__calloc(1, sizeof *st);
    if (!st)
        return -ENOMEM;
    rc = tide__tls_ctx_for(&st->ctx, TIDE_TLS_SERVER, o, NULL, 0);
    if (rc < 0) {
        tide__free(st);
        return rc;
    }
    st->timeout_ms = o->handshake_timeout_ms;
    h->conn_start = server_conn_start;
    h->free = server_tls_free;
    h->arg = st;
    return 0;
}

int tide_start_tls_server(const char *host, int port, tide_server_handler handler, void *arg,
                          const tide_server_opts *so, const tide_tls_opts *o, tide_server **out)
{
    tide__server_hooks h;
    int rc;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!handler)
        return -EINVAL;
    rc = server_hooks(&h, o);
    if (rc < 0)
        return rc;
    return tide__start_server_hooked(host, port, handler, arg, so, &h, out);
}

int tide_start_unix_tls_server(const char *path, tide_server_handler handler, void *arg,
                               const tide_server_opts *so, const tide_tls_opts *o,
                               tide_server **out)
{
    tide__server_hooks h;
    int rc;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!handler || !path)
        return -EINVAL;
    rc = server_hooks(&h, o);
    if (rc < 0)
        return rc;
    return tide__start_unix_server_hooked(path, handler, arg, so, &h, out);
}

/* ---------------------------------------------------------------- shutdown */

int tide_tls_shutdown(tide_stream *s, int flags)
{
    tide_task *cur = tide__current();
    tide__tls *t;
    int rc;

    if (!s)
        return -EINVAL;
    if (!cur)
        return -EPERM;
    if (!tide__stream_transport(s))
        return -EBADF;
    t = tide__tls_of(s);
    if (!t || (flags & ~TIDE_TLS_WAIT_PEER))
        return -EINVAL;
    rc = tide_stream_flush(s);
    if (rc < 0)
        return rc;
    tide__stream_hold(s); /* t stays ours across the waits, even if s is closed */
    for (;;) {
        unsigned wait = 0;
        int done;
        rc = tide__tls_shutdown_once(t, &wait, &done);
        if (rc == 0 || rc != -EAGAIN)
            break;
        rc = tide__tls_wait(&t->base, cur, wait);
        if (rc < 0)
            break;
    }
    tide__stream_release(s);
    if (rc < 0)
        return rc;
    rc = tide_stream_flush(s); /* stream mode: the alert is in the inner queue */
    if (rc < 0 || !(flags & TIDE_TLS_WAIT_PEER))
        return rc;
    /* Read (and drop) until the peer's close_notify: 0 from a read. */
    for (;;) {
        char sink[4096];
        ssize_t n = tide_stream_read(s, sink, sizeof sink);
        if (n <= 0)
            return (int)n;
    }
}

/* ---------------------------------------------------------------- sendfile */

/* kTLS: the kernel encrypts, OpenSSL's SSL_sendfile hands it the file. */
static ssize_t ktls_sendfile(tide__tls *t, tide_task *cur, int in_fd, off_t *offset, size_t count)
{
    size_t done = 0;
    off_t pos = offset ? *offset : lseek(in_fd, 0, SEEK_CUR);

    if (pos < 0)
        return -errno;
    while (done < count) {
        unsigned wait = TIDE__WANT_OUT;
        ossl_ssize_t n;
        int rc = t->err;
        if (rc < 0)
            return done ? (ssize_t)done : rc;
        ERR_clear_error();
        n = SSL_sendfile(t->ssl, in_fd, pos, count - done, 0);
        if (n > 0) {
            pos += n;
            done += (size_t)n;
            continue;
        }
        if (n == 0)
            break; /* end of file */
        if (SSL_get_error(t->ssl, (int)n) != SSL_ERROR_WANT_WRITE) {
            ERR_clear_error();
            return done ? (ssize_t)done : -EIO;
        }
        t->fdt.f->ready &= (uint8_t)~TIDE__EV_OUT;
        ERR_clear_error();
        rc = tide__tls_wait(&t->base, cur, wait);
        if (rc < 0)
            return done ? (ssize_t)done : rc;
    }
    if (offset)
        *offset = pos;
    else if (lseek(in_fd, pos, SEEK_SET) < 0)
        return -errno;
    return (ssize_t)done;
}

ssize_t tide_tls_sendfile(tide_stream *s, int in_fd, off_t *offset, size_t count)
{
    tide_task *cur = tide__current();
    tide__tls *t;
    char *buf;
    size_t done = 0;
    ssize_t rc;

    if (!s || in_fd < 0)
        return !s ? -EINVAL : -EBADF;
    if (!cur)
        return -EPERM;
    t = tide__tls_of(s);
    if (!t)
        return tide__stream_transport(s) ? -EINVAL : -EBADF;
    rc = tide_stream_flush(s);
    if (rc < 0)
        return rc;
    if (t->fdmode && t->ssl && BIO_get_ktls_send(SSL_get_wbio(t->ssl))) {
        tide__stream_hold(s);
        rc = ktls_sendfile(t, cur, in_fd, offset, count);
        tide__stream_release(s);
        return rc;
    }
    /* No kTLS: read pieces, write them through the stream (backpressure by
     * drain).  A regular file is read inline, as tide_sendfile does. */
    buf = tide__malloc(SENDFILE_CHUNK);
    if (!buf)
        return -ENOMEM;
    while (done < count) {
        size_t want = count - done < SENDFILE_CHUNK ? count - done : SENDFILE_CHUNK;
        ssize_t n = offset ? pread(in_fd, buf, want, *offset) : read(in_fd, buf, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        if (n == 0)
            break;
        rc = tide_stream_write(s, buf, (size_t)n);
        if (rc < 0)
            break;
        if (offset)
            *offset += n;
        done += (size_t)n;
        rc = tide_stream_drain(s);
        if (rc < 0)
            break;
    }
    tide__free(buf);
    if (rc < 0 && !done)
        return rc;
    return (ssize_t)done;
}

/* ------------------------------------------------------ what was agreed on */

int tide_stream_is_tls(const tide_stream *s)
{
    return tide__tls_of(s) != NULL;
}

/* The SSL object of a stream whose handshake finished, or NULL. */
static SSL *done_ssl(const tide_stream *s)
{
    tide__tls *t = tide__tls_of(s);
    return t && t->hs_done && t->ssl ? t->ssl : NULL;
}

const char *tide_tls_version(const tide_stream *s)
{
    SSL *ssl = done_ssl(s);
    return ssl ? SSL_get_version(ssl) : "";
}

const char *tide_tls_cipher(const tide_stream *s)
{
    SSL *ssl = done_ssl(s);
    const char *c = ssl ? SSL_get_cipher_name(ssl) : NULL;
    return c ? c : "";
}

const char *tide_tls_alpn(const tide_stream *s)
{
    tide__tls *t = tide__tls_of(s);
    return t && t->hs_done ? t->alpn : "";
}

const char *tide_tls_server_name(const tide_stream *s)
{
    SSL *ssl = done_ssl(s);
    const char *n = ssl ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : NULL;
    return n ? n : "";
}

int tide_tls_peer_subject(const tide_stream *s, char *buf, size_t cap)
{
    SSL *ssl = done_ssl(s);
    X509 *x;
    BIO *b;
    int n;

    if (!tide__tls_of(s) || (!buf && cap))
        return -EINVAL;
    if (cap)
        buf[0] = '\0';
    x = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
    if (!x)
        return 0;
    b = BIO_new(BIO_s_mem());
    if (!b)
        return -ENOMEM;
    X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB);
    n = (int)BIO_pending(b);
    if (cap) {
        int k = BIO_read(b, buf, (int)(cap - 1 < (size_t)n ? cap - 1 : (size_t)n));
        buf[k > 0 ? k : 0] = '\0';
    }
    BIO_free(b);
    ERR_clear_error();
    return n;
}

int tide_tls_session_reused(const tide_stream *s)
{
    SSL *ssl = done_ssl(s);
    return ssl ? SSL_session_reused(ssl) : 0;
}

int tide_tls_ktls(const tide_stream *s)
{
    tide__tls *t = tide__tls_of(s);
    int k = 0;

    if (!t || !t->ssl || !t->fdmode)
        return 0;
    if (BIO_get_ktls_send(SSL_get_wbio(t->ssl)))
        k |= 1;
    if (BIO_get_ktls_recv(SSL_get_rbio(t->ssl)))
        k |= 2;
    return k;
}

int tide_tls_error(const tide_stream *s, char *buf, size_t cap)
{
    tide__tls *t = tide__tls_of(s);

    if (buf && cap)
        snprintf(buf, cap, "%s", t ? t->reason : "");
    return t ? t->err : 0;
}

long tide_tls_verify_result(const tide_stream *s)
{
    tide__tls *t = tide__tls_of(s);
    return t ? t->verify : -1;
}

void *tide_tls_ssl(const tide_stream *s)
{
    tide__tls *t = tide__tls_of(s);
    return t ? t->ssl : NULL;
}
