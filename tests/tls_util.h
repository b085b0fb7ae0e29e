/*
 * Helpers for the TLS tests (header-only, everything static; included
 * only by the test files named *tls*, which are built only with TLS).
 */
#ifndef TIDE_TEST_TLS_UTIL_H
#define TIDE_TEST_TLS_UTIL_H

#include "tide.h"
#include "tide/tls.h"
#include "tls_certs.h"

#include <stdio.h>
#include <stdlib.h>

/* The paths of the test server's certificate, its key and the test CA. */
typedef struct tt_tls_files {
    char cert[200], key[200], ca[200];
} tt_tls_files;

/* Fills f with dir/server.pem, dir/server.key and dir/ca.pem, and *so with
 * the defaults plus that certificate and key (f must outlive *so). */
static inline void tt_tls_server_opts(tide_tls_opts *so, tt_tls_files *f, const char *dir)
{
    snprintf(f->cert, sizeof f->cert, "%s/server.pem", dir);
    snprintf(f->key, sizeof f->key, "%s/server.key", dir);
    snprintf(f->ca, sizeof f->ca, "%s/ca.pem", dir);
    tide_tls_opts_init(so);
    so->cert_file = f->cert;
    so->key_file = f->key;
}

/* Makes a fresh directory from tmpl (ending in XXXXXX) into dir and writes
 * the test certificates there (tls_certs.h).  0 or -1. */
static inline int tt_certs_tmpdir(char *dir, size_t cap, const char *tmpl)
{
    snprintf(dir, cap, "%s", tmpl);
    if (!mkdtemp(dir) || tt_certs_make(dir) < 0)
        return -1;
    return 0;
}

#endif
