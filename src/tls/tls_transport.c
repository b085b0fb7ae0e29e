/*
 * The TLS stream transport (see transport.h for the contract).
 *
 * OpenSSL never waits here: every SSL call is made on a non-blocking BIO,
 * and when it says SSL_ERROR_WANT_READ / WANT_WRITE the transport returns
 * -EAGAIN with the direction it needs; the stream (or the handshake loop)
 * then waits through the transport's wait and calls again.  A task is thus
 * suspended only between OpenSSL calls.  A TLS read may need to write and
 * the other way round; the direction is OpenSSL's, not the call's.
 *
 * Two modes, one code path above the BIO:
 *  - fd mode: OpenSSL's socket BIO on the connection's fd (SSL_set_fd), so
 *    kTLS stays possible and there is no copy.  The fd is tide's (its
 *    state is the fd transport's: generation, readiness bits, callbacks),
 *    so waits and the flush callback are the fd transport's own.  A BIO
 *    callback keeps the fd's readiness bits exact as io.c does: EAGAIN
 *    clears the direction's bit, so does a short read of the socket
 *    (read-ahead asks for as much as the buffer holds) or a short write.
 *    With the bit clear and nothing buffered in OpenSSL, a read returns
 *    -EAGAIN without a syscall; with it set, the wait returns at once and
 *    OpenSSL is asked again, so a WANT_* that did not come from EAGAIN can
 *    never leave a task waiting for an edge that will not come.
 *  - stream mode (start_tls over any stream): a BIO of ours whose reads
 *    and writes are the inner stream's non-blocking calls
 *    (tide__stream_read_nowait, tide__stream_writev_nowait), waits the
 *    inner stream's waits.  Bytes the inner stream had read ahead are the
 *    first the BIO reads: nothing a peer sent right after STARTTLS is lost.
 *
 * One task may read while another writes: both reach OpenSSL on this one
 * thread, never at the same time, which OpenSSL allows between calls.  A
 * write that OpenSSL could not finish (it encrypted a record and the socket
 * took part of it) is retried by the stream from its queue, which holds the
 * same bytes (SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER: the address may differ;
 * the length is never shorter).
 *
 * OpenSSL's error queue is per thread and shared by every connection on
 * it: it is cleared before each call and emptied after each failure into
 * the failing connection's reason string, so one connection's error never
 * shows up on another.
 *
 * Memory.  OpenSSL's record buffers (~34 KiB) are kept while the
 * connection is busy; a timer, armed on use and at most once a second,
 * frees them (SSL_free_buffers) once the connection saw no read or write
 * for IDLE_NS, so 10 000 idle TLS connections hold no record buffer, as
 * idle tide streams hold no buffer.  (SSL_MODE_RELEASE_BUFFERS does that
 * at every wait, and the malloc/free of both buffers per round trip was a
 * third of what TLS added to a 64-byte echo.)  The armed timer keeps
 * tide_loop_run going for up to a second after the last use of an open
 * TLS stream.
 *
 * A fatal error sticks (t->err): no SSL call is made afterwards but
 * SSL_free (after SSL_ERROR_SSL / SYSCALL, OpenSSL forbids SSL_shutdown).
 * In fd mode no SSL call is made once the fd was closed under the stream
 * (its number may be someone else's): every call checks the generation.
 */
#include "tls_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <string.h>

#define GATHER_MAX 4096 /* small iovecs are sent as one record */
#define IDLE_NS 1000000000LL /* record buffers of a connection idle this long are freed */

static inline tide__tls *tls(tide__transport *t)
{
    return (tide__tls *)t;
}

/* Still usable: 0, or the sticky error / -EBADF. */
static int usable(const tide__tls *t)
{
    if (t->err)
        return t->err;
    if (!t->ssl || t->closed)
        return -EBADF;
    if (t->fdmode && t->fdt.f->gen != t->fdt.gen)
        return -EBADF; /* the fd was closed under us */
    return 0;
}

/* ---------------------------------------------------------- error mapping */

static int cert_alert(int reason)
{
    switch (reason) {
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
        return 1;
    default:
        return 0;
    }
}

/* Records a fatal error: the code, the reason, no more SSL calls. */
static int fatal(tide__tls *t, int code, const char *what)
{
    if (!t->err) {
        t->err = code;
        tide__tls_reason(t->reason, sizeof t->reason, what);
    } else {
        ERR_clear_error();
    }
    t->dead = 1;
    return t->err;
}

/* What failed SSL call with result ret means: -EAGAIN (+ *wait), 0 (the
 * peer's close_notify), or the error (sticky). */
static ssize_t ssl_fail(tide__tls *t, int ret, unsigned *wait)
{
    int e = SSL_get_error(t->ssl, ret);
    unsigned long first;
    int reason;

    switch (e) {
    case SSL_ERROR_WANT_READ:
        ERR_clear_error();
        *wait = TIDE__WANT_IN;
        return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        ERR_clear_error();
        *wait = TIDE__WANT_OUT;
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        ERR_clear_error();
        t->peer_shut = 1;
        if (!t->hs_done)
            return fatal(t, TIDE_TLS_ERR_HANDSHAKE, "close_notify during the handshake");
        return 0;
    default:
        break;
    }
    /* SSL_ERROR_SSL, SSL_ERROR_SYSCALL: fatal. */
    if (t->sys_err)
        return fatal(t, t->sys_err, strerror(-t->sys_err)); /* the socket's / inner stream's */
    first = ERR_peek_error();
    reason = ERR_GET_REASON(first);
    if (e == SSL_ERROR_SYSCALL && !first)
        return fatal(t, TIDE_TLS_ERR_TRUNCATED, "the peer closed without close_notify");
    if (ERR_GET_LIB(first) == ERR_LIB_SYS)
        return fatal(t, reason > 0 ? -reason : -EIO, "system error");
    if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING)
        return fatal(t, TIDE_TLS_ERR_TRUNCATED, "the peer closed without close_notify");
    if (cert_alert(reason)) {
        long v = SSL_get_verify_result(t->ssl);
        char what[160];
        t->verify = v;
        if (v != X509_V_OK && reason == SSL_R_CERTIFICATE_VERIFY_FAILED)
            snprintf(what, sizeof what, "certificate refused (%s)",
                     X509_verify_cert_error_string(v));
        else
            snprintf(what, sizeof what, "certificate refused");
        return fatal(t, TIDE_TLS_ERR_VERIFY, what);
    }
    if (!t->hs_done)
        return fatal(t, TIDE_TLS_ERR_HANDSHAKE, "handshake failed");
    return fatal(t, TIDE_TLS_ERR_PROTOCOL, "protocol error");
}

/* Frees the SSL object early (a failed handshake: nothing else will use
 * it). */
static void drop_ssl(tide__tls *t)
{
    if (t->ssl) {
        SSL_free(t->ssl);
        t->ssl = NULL;
    }
}

/* -------------------------------------------------------- fd mode: the BIO */

/* Keeps the fd's readiness bits exact around every socket read and write
 * of OpenSSL's socket BIO, and remembers an errno that is not EAGAIN. */
static long fd_bio_cb(BIO *b, int oper, const char *argp, size_t len, int argi, long argl,
                      int ret, size_t *processed)
{
    tide__tls *t = (tide__tls *)BIO_get_callback_arg(b);
    tide__fd *f = t->fdt.f;
    int err = errno;
    unsigned dir;

    (void)argp;
    (void)argi;
    (void)argl;
    if (oper == (BIO_CB_READ | BIO_CB_RETURN))
        dir = TIDE__EV_IN;
    else if (oper == (BIO_CB_WRITE | BIO_CB_RETURN))
        dir = TIDE__EV_OUT;
    else
        return ret;
    if (f->always_ready)
        return ret;
    if (ret > 0) {
        size_t n = processed ? *processed : 0;
        if (n < len && !f->hup && (dir == TIDE__EV_OUT || f->bytestream))
            f->ready &= ~dir; /* short: drained / full */
    } else if (BIO_should_retry(b)) {
        f->ready &= ~dir; /* EAGAIN */
    } else if (ret < 0 && err && !t->sys_err) {
        t->sys_err = -err; /* ECONNRESET, EPIPE... */
    }
    errno = err;
    return ret;
}

/* ------------------------------------------------- stream mode: the BIO */

static BIO_METHOD *stream_bio_method;
static pthread_once_t stream_bio_once = PTHREAD_ONCE_INIT;

static int sbio_write(BIO *b, const char *data, size_t len, size_t *written)
{
    tide__tls *t = BIO_get_data(b);
    struct iovec v = {(void *)data, len};
    unsigned wait = 0;
    ssize_t n;

    BIO_clear_retry_flags(b);
    if (!t->inner)
        return 0;
    n = tide__stream_writev_nowait(t->inner, &v, 1, &wait);
    if (n == -EAGAIN) {
        BIO_set_retry_write(b);
        return 0;
    }
    if (n < 0) {
        if (!t->sys_err)
            t->sys_err = (int)n;
        return 0;
    }
    *written = (size_t)n;
    return 1;
}

static int sbio_read(BIO *b, char *data, size_t len, size_t *got)
{
    tide__tls *t = BIO_get_data(b);
    unsigned wait = 0;
    ssize_t n;

    BIO_clear_retry_flags(b);
    if (!t->inner)
        return 0;
    n = tide__stream_read_nowait(t->inner, data, len, &wait);
    if (n == -EAGAIN) {
        BIO_set_retry_read(b);
        return 0;
    }
    if (n < 0) {
        if (!t->sys_err)
            t->sys_err = (int)n;
        return 0;
    }
    if (n == 0) {
        BIO_set_flags(b, BIO_FLAGS_IN_EOF); /* OpenSSL: EOF, not an error */
        return 0;
    }
    *got = (size_t)n;
    return 1;
}

static long sbio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1; /* the inner stream flushes by itself */
    case BIO_CTRL_EOF:
        return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0;
    default:
        return 0;
    }
}

static int sbio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void stream_bio_make(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tide stream");

    if (!m)
        return;
    BIO_meth_set_write_ex(m, sbio_write);
    BIO_meth_set_read_ex(m, sbio_read);
    BIO_meth_set_ctrl(m, sbio_ctrl);
    BIO_meth_set_create(m, sbio_create);
    stream_bio_method = m;
}

/* ----------------------------------------------------- idle buffers */

static void idle_arm(tide__tls *t, int64_t ns);

static void idle_fire(void *arg)
{
    tide__tls *t = arg;
    int64_t idle;

    t->idle_armed = 0;
    if (!t->ssl || t->closed || t->dead)
        return;
    idle = tide__loop_ns(t->loop) - t->last_use;
    if (idle >= IDLE_NS)
        (void)SSL_free_buffers(t->ssl); /* (refused while a record is half done) */
    else
        idle_arm(t, IDLE_NS - idle);
}

static void idle_arm(tide__tls *t, int64_t ns)
{
    if (tide_call_later(t->loop, ns / 1000000 + 1, idle_fire, t, &t->idle) == 0)
        t->idle_armed = 1;
}

/* A read or a write: the buffers are in use. */
static inline void touch(tide__tls *t)
{
    t->last_use = t->loop->now;
    if (!t->idle_armed)
        idle_arm(t, IDLE_NS);
}

static void idle_cancel(tide__tls *t)
{
    if (t->idle_armed) {
        (void)tide_timer_cancel(&t->idle);
        t->idle_armed = 0;
    }
}

/* ---------------------------------------------------------- the transport */

/* fd mode: OpenSSL has nothing buffered and the socket is known to have
 * nothing either: reading would only cost an EAGAIN. */
static int known_dry(const tide__tls *t)
{
    const tide__fd *f = t->fdt.f;
    return t->fdmode && !(f->ready & TIDE__EV_IN) && !f->always_ready && !SSL_has_pending(t->ssl);
}

ssize_t tide__tls_read(tide__transport *tp, void *buf, size_t len, unsigned *wait)
{
    tide__tls *t = tls(tp);
    size_t got = 0;
    int rc = usable(t);

    if (rc < 0)
        return rc;
    if (!t->hs_done)
        return -ENOTCONN; /* another task reads while start_tls runs */
    if (t->peer_shut)
        return 0;
    touch(t);
    /* Several records per call, until the buffer is full or the socket dry:
     * a stream fill of 64 KiB is one transport read. */
    while (got < len) {
        size_t n = 0;
        ssize_t r;

        if (known_dry(t)) {
            if (got)
                break;
            *wait = TIDE__WANT_IN;
            return -EAGAIN;
        }
        ERR_clear_error();
        if (SSL_read_ex(t->ssl, (char *)buf + got, len - got, &n)) {
            got += n;
            continue;
        }
        r = ssl_fail(t, 0, wait);
        if (got)
            break; /* the error / the end sticks for the next call */
        return r;
    }
    return (ssize_t)got;
}

static ssize_t tls_writev(tide__transport *tp, const struct iovec *iov, int iovcnt, unsigned *wait)
{
    tide__tls *t = tls(tp);
    char gather[GATHER_MAX];
    const char *p = iov[0].iov_base;
    size_t len = iov[0].iov_len, done = 0;
    int rc = usable(t), i;

    if (rc < 0)
        return rc;
    if (!t->hs_done)
        return -ENOTCONN;
    if (t->shut_sent)
        return -EPIPE;
    touch(t);
    if (iovcnt > 1 && len < GATHER_MAX) {
        /* Small pieces (headers, then a body) go out as one record.  A retry
         * comes from the stream's queue, which has the same bytes. */
        len = 0;
        for (i = 0; i < iovcnt && len + iov[i].iov_len <= GATHER_MAX; i++) {
            memcpy(gather + len, iov[i].iov_base, iov[i].iov_len);
            len += iov[i].iov_len;
        }
        p = gather;
    }
    while (done < len) {
        size_t n = 0;
        ssize_t r;

        if (t->fdmode && done && !(t->fdt.f->ready & TIDE__EV_OUT) && !t->fdt.f->always_ready)
            break; /* the socket is full: no EAGAIN to pay for */
        ERR_clear_error();
        if (SSL_write_ex(t->ssl, p + done, len - done, &n)) {
            done += n;
            continue;
        }
        r = ssl_fail(t, 0, wait);
        if (done)
            break;
        return r == 0 ? -EPIPE : r;
    }
    return (ssize_t)done;
}

int tide__tls_wait(tide__transport *tp, tide_task *cur, unsigned wait)
{
    tide__tls *t = tls(tp);
    int rc = usable(t);

    if (rc < 0)
        return rc;
    if (t->fdmode)
        return tide__fd_transport_ops.wait(&t->fdt.base, cur, wait);
    return tide__stream_wait(t->inner, cur, wait);
}

static int tls_arm(tide__transport *tp, unsigned wait, tide__transport_cb cb, void *arg)
{
    tide__tls *t = tls(tp);

    if (t->fdmode)
        return tide__fd_transport_ops.arm(&t->fdt.base, wait, cb, arg);
    if (!t->inner)
        return wait ? -EBADF : 0;
    return tide__stream_arm(t->inner, wait, cb, arg);
}

int tide__tls_shutdown_once(tide__tls *t, unsigned *wait, int *done)
{
    int rc = usable(t), r;

    *done = 0;
    if (rc < 0)
        return rc;
    if (!t->hs_done)
        return -ENOTCONN;
    if (t->shut_sent) {
        *done = t->peer_shut;
        return 0;
    }
    ERR_clear_error();
    r = SSL_shutdown(t->ssl);
    if (r >= 0) {
        t->shut_sent = 1;
        *done = r == 1;
        ERR_clear_error();
        return 0;
    }
    rc = (int)ssl_fail(t, r, wait);
    return rc == 0 ? 0 : rc;
}

static int tls_shutdown(tide__transport *tp, unsigned *wait)
{
    int done;
    return tide__tls_shutdown_once(tls(tp), wait, &done);
}

/* A client that read nothing after the handshake has not seen the
 * server's session tickets (TLS 1.3 sends them after it): take what
 * arrived, so the next connection can resume.  Never waits. */
static void take_tickets(tide__tls *t)
{
    char sink[512];
    size_t n;
    int i;

    for (i = 0; i < 4 && !known_dry(t); i++) {
        ERR_clear_error();
        if (!SSL_read_ex(t->ssl, sink, sizeof sink, &n))
            break;
    }
    ERR_clear_error();
}

static void tls_close(tide__transport *tp)
{
    tide__tls *t = tls(tp);

    idle_cancel(t);
    if (usable(t) == 0 && t->hs_done && !t->dead) {
        if (!t->server && t->sess_key)
            take_tickets(t);
        if (!t->shut_sent && !t->dead) {
            /* close_notify, one attempt: we do not wait for the peer's. */
            ERR_clear_error();
            if (SSL_shutdown(t->ssl) >= 0)
                t->shut_sent = 1;
            ERR_clear_error();
        }
    }
    t->closed = 1;
    if (t->fdmode) {
        tide__fd_transport_ops.close(&t->fdt.base);
    } else if (t->inner) {
        tide_stream *in = t->inner;
        t->inner = NULL;
        (void)tide_stream_close(in); /* flushes the close_notify */
    }
}

static void tls_free(tide__transport *tp)
{
    tide__tls *t = tls(tp);

    idle_cancel(t);
    drop_ssl(t);
    tide_tls_ctx_free(t->ctx);
    tide__free(t->sess_key);
    tide__free(t);
}

static int tls_address(tide__transport *tp, int peer, struct sockaddr *addr, socklen_t *len)
{
    tide__tls *t = tls(tp);

    if (t->fdmode)
        return tide__fd_transport_ops.address(&t->fdt.base, peer, addr, len);
    if (!t->inner)
        return -EBADF;
    return peer ? tide_stream_peer_addr(t->inner, addr, len)
                : tide_stream_local_addr(t->inner, addr, len);
}

static int tls_fd(const tide__transport *tp)
{
    const tide__tls *t = (const tide__tls *)tp;

    if (t->fdmode)
        return tide__fd_transport_ops.fd(&t->fdt.base);
    return t->inner ? tide_stream_fd(t->inner) : -EBADF;
}

const tide__transport_ops tide__tls_ops = {
    .name = "tls",
    .read = tide__tls_read,
    .writev = tls_writev,
    .wait = tide__tls_wait,
    .arm = tls_arm,
    .shutdown = tls_shutdown,
    .close = tls_close,
    .free = tls_free,
    .address = tls_address,
    .fd = tls_fd,
};

/* ------------------------------------------------------------ making one */

static int is_ip(const char *name)
{
    unsigned char a[16];
    return inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1;
}

/* Clients: SNI (not for an address, RFC 6066) and the name to check. */
static int client_name(tide__tls *t, const char *name)
{
    if (!name || !*name)
        return t->ctx->verify ? -EINVAL : 0; /* nothing to check the certificate against */
    if (is_ip(name)) {
        if (t->ctx->verify &&
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name) != 1)
            return -EINVAL;
        return 0;
    }
    if (SSL_set_tlsext_host_name(t->ssl, name) != 1)
        return -EINVAL;
    if (t->ctx->verify) {
        /* "*.example.com" matches "a.example.com", never "a*.example.com"
         * partial labels (as curl and Python check) */
        SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (SSL_set1_host(t->ssl, name) != 1)
            return -ENOMEM;
    }
    return 0;
}

int tide__tls_new(tide__tls **out, tide_tls_ctx *ctx, int role, const char *server_name,
                  const char *sess_key, const tide__fd_transport *fdt, tide_stream *inner)
{
    tide__tls *t = tide__calloc(1, sizeof *t);
    int rc = 0;

    *out = NULL;
    if (!t) {
        tide_tls_ctx_free(ctx);
        return -ENOMEM;
    }
    t->base.ops = &tide__tls_ops;
    t->ctx = ctx;
    t->server = role == TIDE_TLS_SERVER;
    t->verify = -1;
    ERR_clear_error();
    t->ssl = SSL_new(ctx->ssl_ctx);
    if (!t->ssl) {
        rc = -ENOMEM;
        goto fail;
    }
    SSL_set_app_data(t->ssl, t);
    if (fdt) {
        BIO *b;
        t->fdmode = 1;
        t->fdt = *fdt;
        t->loop = fdt->loop;
        if (SSL_set_fd(t->ssl, fdt->fd) != 1) {
            rc = -ENOMEM;
            goto fail;
        }
        b = SSL_get_rbio(t->ssl); /* the same BIO writes */
        BIO_set_callback_ex(b, fd_bio_cb);
        BIO_set_callback_arg(b, (char *)t);
    } else {
        BIO *b;
        t->loop = tide__tls_loop;
        pthread_once(&stream_bio_once, stream_bio_make);
        if (!stream_bio_method || !(b = BIO_new(stream_bio_method))) {
            rc = -ENOMEM;
            goto fail;
        }
        BIO_set_data(b, t);
        SSL_set_bio(t->ssl, b, b);
        t->inner = inner;
    }
    if (t->server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        rc = client_name(t, server_name);
        if (rc < 0)
            goto fail;
        if (sess_key && !ctx->no_resumption) {
            size_t n = strlen(sess_key) + 1;
            SSL_SESSION *s;
            t->sess_key = tide__malloc(n);
            if (!t->sess_key) {
                rc = -ENOMEM;
                goto fail;
            }
            memcpy(t->sess_key, sess_key, n);
            s = tide__tls_cache_take(ctx, sess_key);
            if (s) {
                (void)SSL_set_session(t->ssl, s);
                SSL_SESSION_free(s);
            }
        }
    }
    ERR_clear_error();
    *out = t;
    return 0;

fail:
    ERR_clear_error();
    t->inner = NULL; /* the caller's on failure */
    tls_free(&t->base);
    return rc;
}

tide__tls *tide__tls_of(const tide_stream *s)
{
    tide__transport *tp = tide__stream_transport(s);
    return tp && tp->ops == &tide__tls_ops ? (tide__tls *)tp : NULL;
}

/* ------------------------------------------------------------ handshake */

static void handshake_done(tide__tls *t)
{
    const unsigned char *p = NULL;
    unsigned n = 0;

    t->hs_done = 1;
    t->verify = SSL_get_verify_result(t->ssl);
    SSL_get0_alpn_selected(t->ssl, &p, &n);
    if (n >= sizeof t->alpn)
        n = sizeof t->alpn - 1;
    if (n)
        memcpy(t->alpn, p, n);
    t->alpn[n] = '\0';
    ERR_clear_error();
    touch(t); /* the handshake's buffers go too if nothing follows */
}

int tide__tls_handshake(tide__tls *t, tide_task *cur)
{
    for (;;) {
        unsigned wait = 0;
        ssize_t r;
        int rc = usable(t);

        if (rc < 0)
            return rc;
        ERR_clear_error();
        rc = SSL_do_handshake(t->ssl);
        if (rc == 1) {
            handshake_done(t);
            return 0;
        }
        r = ssl_fail(t, rc, &wait);
        if (r != -EAGAIN) {
            drop_ssl(t); /* a failed handshake frees its TLS state at once */
            return (int)r;
        }
        rc = tide__tls_wait(&t->base, cur, wait);
        if (rc < 0) {
            /* Cancelled, timed out, closed: the connection is over. */
            if (!t->err) {
                t->err = rc;
                snprintf(t->reason, sizeof t->reason, "handshake interrupted: %s",
                         tide_strerror(rc));
            }
            t->dead = 1;
            drop_ssl(t);
            return rc;
        }
    }
}
