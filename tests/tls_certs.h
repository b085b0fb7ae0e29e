/*
 * Throw-away certificates for the TLS tests and benchmarks, made at run
 * time with the OpenSSL API (header-only, everything static):
 *
 *   ca.pem                 the test CA (ECDSA P-256)
 *   server.pem/.key        "localhost" + 127.0.0.1, signed by the CA
 *   rsa.pem/.key           the same with an RSA-2048 key
 *   other.pem/.key         "other.test" (SNI), signed by the CA
 *   expired.pem/.key       "localhost", expired yesterday
 *   wrong.pem/.key         "wrong.example" only (host name mismatch)
 *   rogue.pem/.key         "localhost", signed by a CA nobody trusts
 *   client.pem/.key        a client certificate (mTLS), CN "tide client"
 *
 * tt_certs_make(dir) writes them into dir (made if missing).  0 or -1.
 */
#ifndef TIDE_TEST_TLS_CERTS_H
#define TIDE_TEST_TLS_CERTS_H

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

typedef struct tt_id {
    EVP_PKEY *key;
    X509 *cert;
} tt_id;

static inline int tt_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *e;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (!e)
        return -1;
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    return 0;
}

/* A certificate for cn (SAN san, NULL: none) valid from +from_s to +to_s
 * seconds from now, signed by issuer (NULL: self-signed). */
static inline int tt_make_id(tt_id *id, int rsa, const char *cn, const char *san, int ca,
                             int client, long from_s, long to_s, const tt_id *issuer)
{
    X509 *x = X509_new();
    X509_NAME *name;
    unsigned char serial[8];
    BIGNUM *bn;

    id->key = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
    if (!x || !id->key)
        return -1;
    X509_set_version(x, 2);
    RAND_bytes(serial, sizeof serial);
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof serial, NULL);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(x), from_s);
    X509_gmtime_adj(X509_getm_notAfter(x), to_s);
    X509_set_pubkey(x, id->key);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"tide tests", -1,
                               -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer->cert) : name);
    {
        X509 *is = issuer ? issuer->cert : x;
        if (tt_ext(x, is, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE") ||
            tt_ext(x, is, NID_key_usage,
                   ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature,keyEncipherment") ||
            tt_ext(x, is, NID_subject_key_identifier, "hash"))
            return -1;
        if (issuer && tt_ext(x, is, NID_authority_key_identifier, "keyid:always"))
            return -1;
        if (!ca && tt_ext(x, is, NID_ext_key_usage, client ? "clientAuth" : "serverAuth"))
            return -1;
        if (san && tt_ext(x, is, NID_subject_alt_name, san))
            return -1;
    }
    if (!X509_sign(x, issuer ? issuer->key : id->key, EVP_sha256()))
        return -1;
    id->cert = x;
    return 0;
}

static inline int tt_write_id(const char *dir, const char *base, const tt_id *id)
{
    char path[512];
    FILE *f;
    int ok;

    snprintf(path, sizeof path, "%s/%s.pem", dir, base);
    f = fopen(path, "w");
    if (!f)
        return -1;
    ok = PEM_write_X509(f, id->cert);
    fclose(f);
    snprintf(path, sizeof path, "%s/%s.key", dir, base);
    f = fopen(path, "w");
    if (!f)
        return -1;
    ok = ok && PEM_write_PrivateKey(f, id->key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    return ok ? 0 : -1;
}

static inline void tt_free_id(tt_id *id)
{
    X509_free(id->cert);
    EVP_PKEY_free(id->key);
    id->cert = NULL;
    id->key = NULL;
}

static inline int tt_certs_make(const char *dir)
{
    const long day = 86400;
    tt_id ca = {0}, rogue_ca = {0}, id = {0};
    int rc = 0;

    mkdir(dir, 0700);
    if (tt_make_id(&ca, 0, "tide test CA", NULL, 1, 0, -day, 30 * day, NULL) ||
        tt_write_id(dir, "ca", &ca) ||
        tt_make_id(&rogue_ca, 0, "rogue CA", NULL, 1, 0, -day, 30 * day, NULL))
        return -1;
#define TT_ID(base, rsa, cn, san, client, from, to, iss)                                            \
    do {                                                                                           \
        if (rc == 0 && (tt_make_id(&id, rsa, cn, san, 0, client, from, to, iss) ||                 \
                        tt_write_id(dir, base, &id)))                                              \
            rc = -1;                                                                               \
        tt_free_id(&id);                                                                           \
    } while (0)
    TT_ID("server", 0, "localhost", "DNS:localhost,IP:127.0.0.1", 0, -day, 30 * day, &ca);
    TT_ID("rsa", 1, "localhost", "DNS:localhost,IP:127.0.0.1", 0, -day, 30 * day, &ca);
    TT_ID("other", 0, "other.test", "DNS:other.test", 0, -day, 30 * day, &ca);
    TT_ID("expired", 0, "localhost", "DNS:localhost,IP:127.0.0.1", 0, -30 * day, -day, &ca);
    TT_ID("wrong", 0, "wrong.example", "DNS:wrong.example", 0, -day, 30 * day, &ca);
    TT_ID("rogue", 0, "localhost", "DNS:localhost,IP:127.0.0.1", 0, -day, 30 * day, &rogue_ca);
    TT_ID("client", 0, "tide client", NULL, 1, -day, 30 * day, &ca);
#undef TT_ID
    tt_free_id(&ca);
    tt_free_id(&rogue_ca);
    return rc;
}

#endif
