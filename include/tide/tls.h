/*
 * tide: TLS streams (clients and servers, start_tls), on OpenSSL 3.
 * Part of the public API; include <tide/tls.h> (not included by <tide.h>:
 * a program that uses it links OpenSSL too, which pkg-config and
 * find_package(tide) carry).  Built when CMake finds OpenSSL 3
 * (-DTIDE_TLS=AUTO|ON|OFF; without it these functions do not exist in the
 * library); this header itself needs no OpenSSL header.
 *
 * TLS is a stream transport: a TLS stream is a tide_stream, and
 * tide_stream_read, readline, readexactly, write, drain, write_eof, close...
 * work on it as on TCP.  Clients verify the server by default (the system
 * CA store, the host name, SNI sent); turning that off takes
 * insecure_skip_verify.
 *
 * Errors: every call returns a negative errno as the rest of tide, or one
 * of the TIDE_TLS_ERR_* codes below for what only TLS can say;
 * tide_strerror names them, tide_tls_error gives OpenSSL's reason for the
 * last one on a stream.
 */
#ifndef TIDE_TLS_H
#define TIDE_TLS_H

#include "../tide.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- errors */

/* TLS errors, in a range of their own (like the TIDE_EAI codes). */
#define TIDE_TLS_ERR_BASE (-30000)
/* A certificate was refused: ours of the peer's (unknown CA, expired, wrong
 * host name; tide_tls_verify_result says which), or the peer's of ours (it
 * sent a certificate alert, or we require one and it sent none). */
#define TIDE_TLS_ERR_VERIFY (TIDE_TLS_ERR_BASE - 1)
/* The handshake failed for another reason (no common version, cipher or
 * ALPN protocol; not TLS at all: garbage instead of a hello). */
#define TIDE_TLS_ERR_HANDSHAKE (TIDE_TLS_ERR_BASE - 2)
/* A protocol error after the handshake (a bad record, a fatal alert). */
#define TIDE_TLS_ERR_PROTOCOL (TIDE_TLS_ERR_BASE - 3)
/* The peer closed the connection without close_notify: the data may have
 * been cut short by an attacker.  Distinct from a clean end (read returns
 * 0), which only a close_notify gives. */
#define TIDE_TLS_ERR_TRUNCATED (TIDE_TLS_ERR_BASE - 4)
/* A certificate, key or CA file could not be used (unreadable PEM, a key
 * that does not match the certificate); a missing file is -ENOENT. */
#define TIDE_TLS_ERR_CONFIG (TIDE_TLS_ERR_BASE - 5)
/* 1 if err is one of the codes above. */
#define TIDE_IS_TLS_ERR(err) ((err) < TIDE_TLS_ERR_BASE && (err) > TIDE_TLS_ERR_BASE - 100)

/* --------------------------------------------------------------- options */

#define TIDE_TLS_CLIENT 0
#define TIDE_TLS_SERVER 1

#define TIDE_TLS_1_2 0x0303 /* TLS 1.2 (the default minimum) */
#define TIDE_TLS_1_3 0x0304 /* TLS 1.3 */

/* Servers: whether to ask clients for a certificate (mTLS). */
#define TIDE_TLS_CLIENT_CERT_NONE 0    /* do not ask (the default) */
#define TIDE_TLS_CLIENT_CERT_REQUEST 1 /* ask; verify one if sent */
#define TIDE_TLS_CLIENT_CERT_REQUIRE 2 /* refuse clients without a valid one */

/* A context: OpenSSL's SSL_CTX with tide's settings, and for clients the
 * session cache that makes a reconnection resume.  Make one and share it
 * between connections (it is reference counted: streams keep it alive). */
typedef struct tide_tls_ctx tide_tls_ctx;

/* Servers: picks the context (certificate) for the host name a client
 * asked for (SNI; NULL when it sent none).  Returns the context to use, or
 * NULL for the server's own.  Runs inside the handshake: must not
 * suspend.  The context returned must live as long as the server. */
typedef tide_tls_ctx *(*tide_tls_sni_fn)(const char *server_name, void *arg);

typedef struct tide_tls_opts {
    /* A prepared context.  When set, the fields that configure a context
     * (from ca_file to no_resumption) are ignored. */
    tide_tls_ctx *ctx;
    /* Clients: the name sent as SNI and checked against the certificate
     * (an IP address is checked against the certificate's IP addresses and
     * not sent).  NULL: the host given to tide_open_tls_connection. */
    const char *server_name;
    /* Trust: PEM file / hashed directory of CA certificates.  Clients: used
     * instead of the system store; servers: to verify client certificates. */
    const char *ca_file;
    const char *ca_path;
    /* Our certificate chain (PEM, leaf first) and private key: a server's
     * (required unless ctx or sni provides them), or a client's (mTLS). */
    const char *cert_file;
    const char *key_file;
    /* ALPN: protocols in order of preference, comma-separated
     * ("h2,http/1.1").  A server picks the first of its own list that the
     * client offers, and refuses a client that offers none of them. */
    const char *alpn;
    int min_version;          /* TIDE_TLS_1_2 (0: the default) or TIDE_TLS_1_3 */
    int client_cert;          /* servers: TIDE_TLS_CLIENT_CERT_* */
    /* Clients: accept ANY certificate for ANY name.  Anyone on the path
     * can then read and change the traffic.  For tests only. */
    int insecure_skip_verify;
    tide_tls_sni_fn sni;      /* servers: see tide_tls_sni_fn */
    void *sni_arg;
    int no_resumption;        /* no session tickets (servers), no cache (clients) */
    /* How long a handshake may take (ms); 0: 10 000 for servers, no limit
     * for clients (their scopes apply); -1: no limit.  The caller's cancel
     * scopes bound it as well. */
    int64_t handshake_timeout_ms;
} tide_tls_opts;

/* All fields 0 / NULL: verify the peer with the system CA store, TLS 1.2
 * or later, resumption on. */
TIDE_API void tide_tls_opts_init(tide_tls_opts *o);

/* A new context for role (TIDE_TLS_CLIENT or TIDE_TLS_SERVER) from o (its
 * ctx, server_name and handshake_timeout_ms are not used).  Free it with
 * tide_tls_ctx_free.  Needs no loop.
 * Errors: -EINVAL (bad role or option, a server without a certificate and
 * without sni), -ENOENT (a file named in o does not exist),
 * TIDE_TLS_ERR_CONFIG, -ENOMEM. */
TIDE_API int tide_tls_ctx_new(tide_tls_ctx **ctx, int role, const tide_tls_opts *o);
/* A context over a prepared SSL_CTX (an SSL_CTX *: we take a reference,
 * the caller keeps its own), for settings tide has no option for.  tide
 * adds its session cache (clients) and its modes; verification, ALPN and
 * certificates are the SSL_CTX's.  Errors: -EINVAL, -ENOMEM. */
TIDE_API int tide_tls_ctx_wrap(tide_tls_ctx **ctx, int role, void *ssl_ctx);
/* The context's SSL_CTX (an SSL_CTX *), to adjust before first use. */
TIDE_API void *tide_tls_ctx_ssl_ctx(tide_tls_ctx *ctx);
/* Drops the caller's reference (the streams and servers using ctx keep
 * theirs).  NULL is fine. */
TIDE_API void tide_tls_ctx_free(tide_tls_ctx *ctx);

/* --------------------------------------------------------------- streams */

/* start_tls: makes s (open, connected) a TLS stream in place, as role, and
 * runs the handshake; the handle stays the same and every stream call on it
 * goes through TLS from now on.  What s queued to write is flushed first;
 * bytes it read ahead and did not hand out yet are the first bytes of the
 * handshake (a client that sent its hello right after "STARTTLS" loses
 * nothing).  Over a socket stream with nothing read ahead, OpenSSL works
 * on the socket directly (kTLS possible, one task may read while another
 * writes); over any other stream (a pipe, another TLS stream, or with
 * bytes read ahead) through that stream.  The handshake is bounded by the
 * caller's scopes and o->handshake_timeout_ms; if it fails, s stays open
 * but every call on it returns the error (tide_tls_error says why): close
 * it.  A cancelled handshake stops at once and frees its TLS state.
 * Errors: -EINVAL, -EPERM, -EBADF, -EBUSY (another task is inside s), the
 * stream's write error, -ECANCELED, -ETIMEDOUT, TIDE_TLS_ERR_*, -ENOENT /
 * TIDE_TLS_ERR_CONFIG (from the context o describes), -ECONNRESET, -ENOMEM. */
TIDE_API int tide_tls_start(tide_stream *s, int role, const tide_tls_opts *o);

/* open_connection with TLS: tide_open_connection(host, port) then
 * tide_tls_start as a client, the name checked being o->server_name or
 * host.  Without o->ctx (and with no field that configures a context) a
 * context shared by the process is used, whose session cache makes
 * reconnections resume; with such fields and no ctx, a context is made for
 * this connection alone (no resumption, the CA store loaded again): make
 * one with tide_tls_ctx_new to share.  On failure nothing is left open.
 * Errors: as tide_open_connection and tide_tls_start. */
TIDE_API int tide_open_tls_connection(const char *host, int port, const tide_tls_opts *o,
                                      tide_stream **s);

/* start_server with TLS: as tide_start_server, each connection's stream
 * doing a server handshake (within o->handshake_timeout_ms, 10 s by
 * default) before handler runs; a connection whose handshake fails is
 * closed without calling handler.  Errors: as tide_start_server and
 * tide_tls_ctx_new. */
TIDE_API int tide_start_tls_server(const char *host, int port, tide_server_handler handler,
                                   void *arg, const tide_server_opts *so, const tide_tls_opts *o,
                                   tide_server **srv);
/* The same on a Unix stream socket (as tide_start_unix_server).  Its
 * connections' TLS works through the socket stream like TCP's (fd mode).
 * Errors: as tide_start_unix_server and tide_tls_ctx_new. */
TIDE_API int tide_start_unix_tls_server(const char *path, tide_server_handler handler, void *arg,
                                        const tide_server_opts *so, const tide_tls_opts *o,
                                        tide_server **srv);

/* tide_tls_shutdown flag: also wait for the peer's close_notify. */
#define TIDE_TLS_WAIT_PEER 0x1

/* Flushes what is queued, then sends close_notify (the peer reads a clean
 * end; we may still read).  With TIDE_TLS_WAIT_PEER, then reads (and
 * drops) until the peer's close_notify.  Waits within the caller's scopes.
 * tide_stream_close sends close_notify too, without waiting for anything
 * (TLS 1.3 peers need not answer).  Errors: -EINVAL (not a TLS stream),
 * -EBADF, -EPERM, -ECANCELED, -ETIMEDOUT, the stream's write error,
 * TIDE_TLS_ERR_TRUNCATED (the peer closed without one), TIDE_TLS_ERR_*. */
TIDE_API int tide_tls_shutdown(tide_stream *s, int flags);

/* sendfile over TLS: count bytes of in_fd from *offset (advanced; NULL:
 * from in_fd's position) written to s.  With kTLS (Linux, the tls kernel
 * module, a cipher it knows) SSL_sendfile hands the copy to the kernel;
 * otherwise the file is read in pieces and written through the stream.
 * Returns the count written (fewer at end of file).  Errors: -EINVAL,
 * -EBADF, -EPERM, the stream's write error, -ECANCELED, -ETIMEDOUT, file
 * read errors. */
TIDE_API ssize_t tide_tls_sendfile(tide_stream *s, int in_fd, off_t *offset, size_t count);

/* ----------------------------------------------------- what was agreed on */

/* 1 if s is a TLS stream, 0 if not (or s is not a live stream).  Never
 * fails. */
TIDE_API int tide_stream_is_tls(const tide_stream *s);
/* "TLSv1.3", the cipher suite's name, the ALPN protocol ("" for none), the
 * SNI name (servers: the one the client asked for; clients: the one sent;
 * "" for none).  "" for a stream that is not TLS or whose handshake did not
 * finish.  Valid until the stream is closed. */
TIDE_API const char *tide_tls_version(const tide_stream *s);
TIDE_API const char *tide_tls_cipher(const tide_stream *s);
TIDE_API const char *tide_tls_alpn(const tide_stream *s);
TIDE_API const char *tide_tls_server_name(const tide_stream *s);
/* The subject of the peer's certificate, one line ("O = tide, CN = localhost"),
 * into buf (truncated to cap, NUL-terminated).  Its length, 0 if the peer
 * sent none.  Errors: -EINVAL (not TLS, or buf NULL with cap > 0). */
TIDE_API int tide_tls_peer_subject(const tide_stream *s, char *buf, size_t cap);
/* 1 if the handshake resumed a session (an abbreviated handshake), else 0
 * (also for a stream that is not TLS).  Never fails. */
TIDE_API int tide_tls_session_reused(const tide_stream *s);
/* kTLS in use: 0x1 sending, 0x2 receiving, 0 none (or not TLS).  Never
 * fails. */
TIDE_API int tide_tls_ktls(const tide_stream *s);
/* The last TLS error on s (0 if none) with OpenSSL's reason, and for a
 * refused certificate the verification's, copied into buf (truncated,
 * NUL-terminated; buf may be NULL).  The value returned is that error
 * (TIDE_TLS_ERR_*, or a negative errno), not a failure of this call, which
 * never fails (a stream that is not TLS gives 0 and ""). */
TIDE_API int tide_tls_error(const tide_stream *s, char *buf, size_t cap);
/* OpenSSL's verification result of the peer's certificate (X509_V_OK is
 * 0; e.g. 10 expired, 62 host name mismatch, 20/21 unknown issuer), -1 if
 * there was no verification. */
TIDE_API long tide_tls_verify_result(const tide_stream *s);
/* The stream's SSL * (for what tide has no call for), or NULL. */
TIDE_API void *tide_tls_ssl(const tide_stream *s);

#ifdef __cplusplus
}
#endif

#endif /* TIDE_TLS_H */
