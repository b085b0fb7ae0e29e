/*
 * TLS contexts: tide_tls_opts -> an SSL_CTX with tide's settings.
 *
 * What every context gets:
 *  - TLS 1.2 at least (1.3 on request), no renegotiation (a TLS 1.2 peer
 *    could otherwise make a read need a write), kTLS allowed
 *    (SSL_OP_ENABLE_KTLS: used where the kernel and the cipher allow it);
 *  - partial writes and a moving write buffer: a write that OpenSSL could
 *    not finish is retried from the stream's queue, which holds the same
 *    bytes at another address, and one call may write fewer bytes than
 *    asked (SSL_MODE_ENABLE_PARTIAL_WRITE | ACCEPT_MOVING_WRITE_BUFFER);
 *  - record buffers kept while a connection is busy and freed once it has
 *    been idle for a second (SSL_free_buffers from a timer: see
 *    tls_transport.c), rather than SSL_MODE_RELEASE_BUFFERS, which frees
 *    and allocates ~34 KiB per round trip (measured: a third of what TLS
 *    adds to a small echo);
 *  - read-ahead, so one read(2) takes whatever the socket has (not one
 *    record header, then its body), and a short read means "drained".
 *
 * Clients verify by default: SSL_VERIFY_PEER against the system store (or
 * ca_file / ca_path), and each connection checks the name (tls_transport.c).
 * Servers send session tickets (stateless resumption, OpenSSL's default of
 * two per TLS 1.3 handshake) under a fixed session id context, so that
 * resumption also works with client certificates.
 *
 * The client session cache.  TLS 1.3 tickets arrive after the handshake,
 * in the server's first records; OpenSSL hands each to the context's
 * new-session callback, which stores it under the connection's key (server
 * name + peer address).  The next connection to that key takes it (tickets
 * are single use, RFC 8446 C.4) and offers it.  The cache belongs to the
 * context, which any thread may use: a mutex guards it.
 *
 * The process keeps one default client context (system store, defaults),
 * made on first use: connections without options share it and its cache,
 * and none pays for loading the CA store again.
 */
#include "tls_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <unistd.h>

void tide_tls_opts_init(tide_tls_opts *o)
{
    if (o)
        memset(o, 0, sizeof *o);
}

void tide__tls_reason(char *buf, size_t cap, const char *what)
{
    unsigned long e, first = 0;
    char tmp[160];

    while ((e = ERR_get_error()) != 0)
        if (!first)
            first = e; /* the first is the cause; the rest say where it surfaced */
    if (!buf || !cap)
        return;
    if (!first) {
        snprintf(buf, cap, "%s", what);
        return;
    }
    {
        const char *r = ERR_reason_error_string(first);
        if (r)
            snprintf(tmp, sizeof tmp, "%s", r);
        else
            ERR_error_string_n(first, tmp, sizeof tmp);
    }
    snprintf(buf, cap, "%s: %s", what, tmp);
}

/* ------------------------------------------------------------------ ALPN */

/* "h2,http/1.1" -> "\x02h2\x08http/1.1".  0, -EINVAL, -ENOMEM. */
static int alpn_wire(const char *list, unsigned char **out, size_t *outlen)
{
    size_t n = strlen(list), i = 0, o = 0;
    unsigned char *w;

    *out = NULL;
    *outlen = 0;
    if (!n)
        return -EINVAL;
    w = tide__malloc(n + 1);
    if (!w)
        return -ENOMEM;
    while (i <= n) {
        size_t j = i;
        while (j < n && list[j] != ',')
            j++;
        if (j == i || j - i > 255) {
            tide__free(w);
            return -EINVAL;
        }
        w[o++] = (unsigned char)(j - i);
        memcpy(w + o, list + i, j - i);
        o += j - i;
        i = j + 1;
    }
    *out = w;
    *outlen = o;
    return 0;
}

/* Servers: the first of our protocols that the client offers; none is a
 * fatal no_application_protocol alert (RFC 7301). */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    tide_tls_ctx *c = arg;
    unsigned char *sel = NULL;

    (void)ssl;
    if (!c->alpn)
        return SSL_TLSEXT_ERR_NOACK;
    if (SSL_select_next_proto(&sel, outlen, c->alpn, (unsigned)c->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* ------------------------------------------------------------------- SNI */

static int sni_select(SSL *ssl, int *alert, void *arg)
{
    tide_tls_ctx *c = arg, *pick;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

    (void)alert;
    if (!c->sni)
        return SSL_TLSEXT_ERR_OK;
    pick = c->sni(name, c->sni_arg);
    if (pick && pick->ssl_ctx != SSL_get_SSL_CTX(ssl) && !SSL_set_SSL_CTX(ssl, pick->ssl_ctx))
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    return SSL_TLSEXT_ERR_OK;
}

/* ------------------------------------------------- the client session cache */

/* Several sessions may be kept per key (many connections to one server
 * each bring tickets, and each reconnection needs one); the oldest goes
 * when the cache is full.  A connection offers the newest for its key.  A
 * TLS 1.3 ticket is taken out when offered (single use, RFC 8446 C.4; the
 * resumed handshake brings a new one).  A TLS 1.2 session stays: a server
 * resuming it sends no new ticket, and the next connection may offer it
 * again. */

static void sess_clear(tide__tls_sess *e)
{
    SSL_SESSION_free(e->sess);
    tide__free(e->key);
    memset(e, 0, sizeof *e);
}

SSL_SESSION *tide__tls_cache_take(tide_tls_ctx *c, const char *key)
{
    tide__tls_sess *best = NULL;
    SSL_SESSION *s = NULL;
    size_t i;

    if (!key || c->no_resumption)
        return NULL;
    pthread_mutex_lock(&c->lock);
    for (i = 0; i < TIDE__TLS_CACHE_MAX; i++) {
        tide__tls_sess *e = &c->cache[i];
        if (e->key && !strcmp(e->key, key) && (!best || e->stamp > best->stamp))
            best = e; /* the newest for this key */
    }
    if (best) {
        s = best->sess;
        if (SSL_SESSION_get_protocol_version(s) >= TLS1_3_VERSION) {
            best->sess = NULL; /* TLS 1.3 tickets are used once */
            sess_clear(best);
        } else if (!SSL_SESSION_up_ref(s)) {
            s = NULL; /* a TLS 1.2 session serves again (no new ticket comes) */
        }
    }
    pthread_mutex_unlock(&c->lock);
    return s;
}

void tide__tls_cache_put(tide_tls_ctx *c, const char *key, SSL_SESSION *sess)
{
    tide__tls_sess *slot = NULL;
    size_t i, n = strlen(key) + 1;
    char *k = tide__malloc(n);

    if (!k) {
        SSL_SESSION_free(sess);
        return;
    }
    memcpy(k, key, n);
    pthread_mutex_lock(&c->lock);
    for (i = 0; i < TIDE__TLS_CACHE_MAX; i++) {
        tide__tls_sess *e = &c->cache[i];
        if (!e->key) {
            slot = e; /* a free slot */
            break;
        }
        if (!slot || e->stamp < slot->stamp)
            slot = e; /* else the oldest */
    }
    if (slot->key)
        sess_clear(slot);
    slot->key = k;
    slot->sess = sess;
    slot->stamp = ++c->stamp;
    pthread_mutex_unlock(&c->lock);
}

/* OpenSSL's new-session callback: a ticket (TLS 1.3: after the handshake)
 * or a TLS 1.2 session.  1: we keep the reference. */
static int new_session(SSL *ssl, SSL_SESSION *sess)
{
    tide__tls *t = SSL_get_app_data(ssl);

    if (!t || !t->sess_key || !t->ctx || t->ctx->no_resumption || !SSL_SESSION_is_resumable(sess))
        return 0;
    tide__tls_cache_put(t->ctx, t->sess_key, sess);
    return 1;
}

/* ------------------------------------------------------------- contexts */

/* -ENOENT / -EACCES if path cannot be read, so that a typo is not a vague
 * OpenSSL error. */
static int readable(const char *path)
{
    return access(path, R_OK) == 0 ? 0 : -errno;
}

static void common_settings(SSL_CTX *sc)
{
    SSL_CTX_set_options(sc, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION
#ifdef SSL_OP_ENABLE_KTLS
                                | SSL_OP_ENABLE_KTLS
#endif
    );
    SSL_CTX_set_mode(sc, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                             SSL_MODE_AUTO_RETRY);
    SSL_CTX_set_read_ahead(sc, 1);
}

static tide_tls_ctx *ctx_alloc(SSL_CTX *sc, int role)
{
    tide_tls_ctx *c = tide__calloc(1, sizeof *c);

    if (!c)
        return NULL;
    if (pthread_mutex_init(&c->lock, NULL) != 0) {
        tide__free(c);
        return NULL;
    }
    c->ssl_ctx = sc;
    c->role = role;
    c->refs = 1;
    if (role == TIDE_TLS_CLIENT) {
        SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(sc, new_session);
    }
    return c;
}

void tide__tls_ctx_ref(tide_tls_ctx *c)
{
    __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
}

void tide_tls_ctx_free(tide_tls_ctx *c)
{
    size_t i;

    if (!c || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    SSL_CTX_free(c->ssl_ctx);
    for (i = 0; i < TIDE__TLS_CACHE_MAX; i++)
        if (c->cache[i].key)
            sess_clear(&c->cache[i]);
    tide__free(c->alpn);
    pthread_mutex_destroy(&c->lock);
    tide__free(c);
}

void *tide_tls_ctx_ssl_ctx(tide_tls_ctx *c)
{
    return c ? c->ssl_ctx : NULL;
}

static int check_opts(int role, const tide_tls_opts *o)
{
    if (role != TIDE_TLS_CLIENT && role != TIDE_TLS_SERVER)
        return -EINVAL;
    if (!o)
        return role == TIDE_TLS_SERVER ? -EINVAL : 0;
    if (o->min_version && o->min_version != TIDE_TLS_1_2 && o->min_version != TIDE_TLS_1_3)
        return -EINVAL;
    if (!o->cert_file != !o->key_file)
        return -EINVAL; /* a certificate needs its key and the other way round */
    if (o->client_cert < TIDE_TLS_CLIENT_CERT_NONE || o->client_cert > TIDE_TLS_CLIENT_CERT_REQUIRE)
        return -EINVAL;
    if (role == TIDE_TLS_SERVER && !o->cert_file && !o->sni)
        return -EINVAL;
    return 0;
}

/* The failure of an OpenSSL call while configuring: the reason, then the
 * code. */
static int config_failed(char *why, size_t cap, const char *what)
{
    tide__tls_reason(why, cap, what);
    return TIDE_TLS_ERR_CONFIG;
}

static int configure(tide_tls_ctx *c, const tide_tls_opts *o, char *why, size_t cap)
{
    SSL_CTX *sc = c->ssl_ctx;
    int rc;

    if (!SSL_CTX_set_min_proto_version(sc, o && o->min_version == TIDE_TLS_1_3 ? TLS1_3_VERSION
                                                                                : TLS1_2_VERSION))
        return config_failed(why, cap, "min version");
    if (o && o->ca_file && (rc = readable(o->ca_file)) < 0)
        return rc;
    if (o && o->ca_path && (rc = readable(o->ca_path)) < 0)
        return rc;
    if (o && o->cert_file) {
        if ((rc = readable(o->cert_file)) < 0 || (rc = readable(o->key_file)) < 0)
            return rc;
        if (SSL_CTX_use_certificate_chain_file(sc, o->cert_file) != 1)
            return config_failed(why, cap, o->cert_file);
        if (SSL_CTX_use_PrivateKey_file(sc, o->key_file, SSL_FILETYPE_PEM) != 1)
            return config_failed(why, cap, o->key_file);
        if (SSL_CTX_check_private_key(sc) != 1)
            return config_failed(why, cap, "the key does not match the certificate");
    }
    if (o && o->alpn) {
        rc = alpn_wire(o->alpn, &c->alpn, &c->alpn_len);
        if (rc < 0)
            return rc;
    }
    c->no_resumption = o && o->no_resumption;

    if (c->role == TIDE_TLS_CLIENT) {
        c->verify = !(o && o->insecure_skip_verify);
        if (c->verify) {
            if (o && (o->ca_file || o->ca_path)) {
                if (SSL_CTX_load_verify_locations(sc, o->ca_file, o->ca_path) != 1)
                    return config_failed(why, cap, "CA file/path");
            } else if (SSL_CTX_set_default_verify_paths(sc) != 1) {
                return config_failed(why, cap, "system CA store");
            }
            SSL_CTX_set_verify(sc, SSL_VERIFY_PEER, NULL);
        } else {
            SSL_CTX_set_verify(sc, SSL_VERIFY_NONE, NULL);
        }
        if (c->alpn && SSL_CTX_set_alpn_protos(sc, c->alpn, (unsigned)c->alpn_len) != 0)
            return config_failed(why, cap, "ALPN");
        if (c->no_resumption)
            SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_OFF);
        return 0;
    }

    /* servers */
    SSL_CTX_set_options(sc, SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_session_id_context(sc, (const unsigned char *)"tide", 4);
    SSL_CTX_set_num_tickets(sc, 1);
    if (c->no_resumption) {
        SSL_CTX_set_options(sc, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(sc, 0);
        SSL_CTX_set_session_cache_mode(sc, SSL_SESS_CACHE_OFF);
    }
    if (o->client_cert != TIDE_TLS_CLIENT_CERT_NONE) {
        int mode = SSL_VERIFY_PEER;
        if (o->client_cert == TIDE_TLS_CLIENT_CERT_REQUIRE)
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        if (o->ca_file || o->ca_path) {
            if (SSL_CTX_load_verify_locations(sc, o->ca_file, o->ca_path) != 1)
                return config_failed(why, cap, "CA file/path");
        } else if (SSL_CTX_set_default_verify_paths(sc) != 1) {
            return config_failed(why, cap, "system CA store");
        }
        if (o->ca_file) {
            STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->ca_file);
            if (names)
                SSL_CTX_set_client_CA_list(sc, names); /* the CAs we ask for */
        }
        SSL_CTX_set_verify(sc, mode, NULL);
    }
    if (c->alpn)
        SSL_CTX_set_alpn_select_cb(sc, alpn_select, c);
    c->sni = o->sni;
    c->sni_arg = o->sni_arg;
    if (c->sni) {
        SSL_CTX_set_tlsext_servername_callback(sc, sni_select);
        SSL_CTX_set_tlsext_servername_arg(sc, c);
    }
    return 0;
}

int tide__tls_ctx_make(tide_tls_ctx **out, int role, const tide_tls_opts *o, char *why, size_t cap)
{
    SSL_CTX *sc;
    tide_tls_ctx *c;
    int rc;

    *out = NULL;
    if (why && cap)
        why[0] = '\0';
    rc = check_opts(role, o);
    if (rc < 0)
        return rc;
    ERR_clear_error();
    sc = SSL_CTX_new(role == TIDE_TLS_SERVER ? TLS_server_method() : TLS_client_method());
    if (!sc) {
        ERR_clear_error();
        return -ENOMEM;
    }
    common_settings(sc);
    c = ctx_alloc(sc, role);
    if (!c) {
        SSL_CTX_free(sc);
        return -ENOMEM;
    }
    rc = configure(c, o, why, cap);
    ERR_clear_error();
    if (rc < 0) {
        tide_tls_ctx_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int tide_tls_ctx_new(tide_tls_ctx **out, int role, const tide_tls_opts *o)
{
    if (!out)
        return -EINVAL;
    return tide__tls_ctx_make(out, role, o, NULL, 0);
}

int tide_tls_ctx_wrap(tide_tls_ctx **out, int role, void *ssl_ctx)
{
    SSL_CTX *sc = ssl_ctx;
    tide_tls_ctx *c;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!sc || (role != TIDE_TLS_CLIENT && role != TIDE_TLS_SERVER))
        return -EINVAL;
    if (!SSL_CTX_up_ref(sc))
        return -ENOMEM;
    SSL_CTX_set_mode(sc, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    c = ctx_alloc(sc, role);
    if (!c) {
        SSL_CTX_free(sc);
        return -ENOMEM;
    }
    c->verify = SSL_CTX_get_verify_mode(sc) & SSL_VERIFY_PEER;
    *out = c;
    return 0;
}

/* ----------------------------------------------- the default client context */

static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static tide_tls_ctx *default_client;
static int default_rc;

static void default_make(void)
{
    default_rc = tide__tls_ctx_make(&default_client, TIDE_TLS_CLIENT, NULL, NULL, 0);
}

/* o sets nothing that shapes a context: the default one serves. */
static int configures_nothing(const tide_tls_opts *o)
{
    return !o || (!o->ca_file && !o->ca_path && !o->cert_file && !o->key_file && !o->alpn &&
                  !o->min_version && !o->client_cert && !o->insecure_skip_verify && !o->sni &&
                  !o->no_resumption);
}

int tide__tls_ctx_for(tide_tls_ctx **out, int role, const tide_tls_opts *o, char *why, size_t cap)
{
    *out = NULL;
    if (o && o->ctx) {
        if (o->ctx->role != role)
            return -EINVAL;
        tide__tls_ctx_ref(o->ctx);
        *out = o->ctx;
        return 0;
    }
    if (role == TIDE_TLS_CLIENT && configures_nothing(o)) {
        pthread_once(&default_once, default_make);
        if (default_rc < 0)
            return default_rc;
        tide__tls_ctx_ref(default_client);
        *out = default_client;
        return 0;
    }
    return tide__tls_ctx_make(out, role, o, why, cap);
}
