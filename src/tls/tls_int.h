/*
 * TLS internals shared by the files of src/tls (see tls_transport.c for the model).
 *
 *   tls_ctx.c        contexts: options -> SSL_CTX, ALPN, SNI, the client
 *                    session cache, the process's default client context
 *   tls_transport.c  the TLS stream transport (transport.h) over a socket
 *                    (OpenSSL on the fd) or over any stream (a BIO of ours
 *                    over the inner stream's non-blocking calls), the
 *                    handshake, error mapping
 *   tls_stream.c     the public calls: start_tls, connect, servers,
 *                    shutdown, sendfile, what was negotiated
 */
#ifndef TIDE_TLS_INT_H
#define TIDE_TLS_INT_H

#include "tide/tls.h"
#include "transport.h"

#include <openssl/ssl.h>

/* ------------------------------------------------------------- contexts */

#define TIDE__TLS_CACHE_MAX 256 /* client sessions kept per context (all keys) */

typedef struct tide__tls_sess {
    char *key;            /* server name + peer address */
    SSL_SESSION *sess;    /* one reference ours */
    uint64_t stamp;       /* last stored: the oldest goes first */
} tide__tls_sess;

struct tide_tls_ctx {
    SSL_CTX *ssl_ctx;
    int role;
    int refs;             /* atomic: the creator, each stream, each server */
    int verify;           /* clients: verifying the server (not insecure) */
    unsigned char *alpn;  /* wire format (length-prefixed), or NULL */
    size_t alpn_len;
    tide_tls_sni_fn sni;
    void *sni_arg;
    int no_resumption;
    /* the client session cache (a context may serve several loops) */
    pthread_mutex_t lock;
    tide__tls_sess cache[TIDE__TLS_CACHE_MAX];
    uint64_t stamp;
};

/* A context from options (o may be NULL).  0 or -errno / TIDE_TLS_ERR_*;
 * *why (if not NULL) gets OpenSSL's reason on failure. */
int tide__tls_ctx_make(tide_tls_ctx **ctx, int role, const tide_tls_opts *o, char *why,
                       size_t cap);
void tide__tls_ctx_ref(tide_tls_ctx *ctx);
/* The context a connection uses: o->ctx (a new reference), the process's
 * default client context when o configures nothing, or a new one. */
int tide__tls_ctx_for(tide_tls_ctx **ctx, int role, const tide_tls_opts *o, char *why,
                      size_t cap);
/* The client session cache: takes a session for key (the caller owns the
 * reference; NULL if none), stores one (a reference of the cache's own). */
SSL_SESSION *tide__tls_cache_take(tide_tls_ctx *ctx, const char *key);
void tide__tls_cache_put(tide_tls_ctx *ctx, const char *key, SSL_SESSION *sess);
/* OpenSSL's reason for the last error in the queue (then cleared). */
void tide__tls_reason(char *buf, size_t cap, const char *what);

/* ------------------------------------------------------------ transport */

typedef struct tide__tls {
    tide__transport base;
    SSL *ssl;              /* NULL once freed (failed handshake, free) */
    tide_tls_ctx *ctx;     /* our reference */
    tide_loop *loop;
    uint8_t fdmode;        /* OpenSSL on the socket (fdt) / on the inner stream */
    uint8_t server;
    uint8_t hs_done;       /* the handshake finished */
    uint8_t dead;          /* a fatal error: no SSL call but SSL_free any more */
    uint8_t closed;        /* close was called */
    uint8_t shut_sent;     /* close_notify went out */
    uint8_t peer_shut;     /* the peer's close_notify came */
    tide__fd_transport fdt; /* fd mode: the socket (was the stream's) */
    tide_stream *inner;    /* stream mode: what we read and write */
    int err;               /* sticky error (< 0), 0 if none */
    int sys_err;           /* an errno a BIO saw (the socket, the inner stream) */
    long verify;           /* SSL_get_verify_result after the handshake, -1 */
    char *sess_key;        /* clients: the session cache's key */
    int64_t last_use;      /* loop time (ns) of the last read or write */
    tide_timer idle;       /* frees the record buffers of an idle connection */
    uint8_t idle_armed;
    char reason[256];      /* OpenSSL's reason for err */
    char alpn[64];         /* negotiated ALPN protocol, NUL-terminated */
} tide__tls;

/* Makes the transport for a stream (see tide__stream_layer): over fdt (fd
 * mode) or over inner (stream mode).  Takes over the reference to ctx (on
 * failure too).  Clients: server_name is sent (SNI) and checked, sess_key
 * (may be NULL) keys the session cache.  0 or -errno; *out set. */
int tide__tls_new(tide__tls **out, tide_tls_ctx *ctx, int role, const char *server_name,
                  const char *sess_key, const tide__fd_transport *fdt, tide_stream *inner);
/* The handshake, waiting as needed (a cancellation point).  0 or the
 * error, which sticks (and frees the SSL object). */
int tide__tls_handshake(tide__tls *t, tide_task *cur);
/* tide__tls of a stream, or NULL if it is not TLS. */
tide__tls *tide__tls_of(const tide_stream *s);
/* One attempt of SSL_shutdown: 0 (sent; *done 1 once the peer's came too),
 * -EAGAIN with *wait, or the error. */
int tide__tls_shutdown_once(tide__tls *t, unsigned *wait, int *done);
/* One read attempt into buf (as the transport's read). */
ssize_t tide__tls_read(tide__transport *tp, void *buf, size_t len, unsigned *wait);
int tide__tls_wait(tide__transport *tp, tide_task *cur, unsigned wait);

extern const tide__transport_ops tide__tls_ops;

#endif
