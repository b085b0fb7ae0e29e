/*
 * Private parts of the HTTP client (src/http_client.c) that tests and the
 * fuzz harness reach.
 */
#ifndef TIDE_HTTP_CLIENT_INT_H
#define TIDE_HTTP_CLIENT_INT_H

#include "tide.h"

/* Resolves the reference loc[0..len) (a Location field's value) against the
 * absolute URL base (RFC 3986 section 5.2: absolute, scheme-relative "//",
 * absolute-path, query-only and relative references, dot segments removed,
 * the fragment dropped): a malloc'd (tide__malloc) URL, or NULL with *err
 * -EINVAL (base is not a URL), -EBADMSG (loc is not a reference to follow:
 * another scheme, spaces, controls) or -ENOMEM. */
char *tide__http_url_resolve(const char *base, const char *loc, size_t len, int *err);

#endif
