/*
 * Helpers for the HTTP client tests (header-only, everything static).
 */
#ifndef TIDE_TEST_HTTP_UTIL_H
#define TIDE_TEST_HTTP_UTIL_H

#include "tide.h"

/* GETs url with c (o may be NULL) and reads the whole body (at most max
 * bytes, 0: no limit) into *body (malloc'd; NULL on error).
 * The status, or the negative errno of the request or the read. */
static inline int tt_http_get(tide_http_client *c, const char *url, const tide_http_req_opts *o,
                              char **body, size_t max)
{
    tide_http_resp *r;
    int rc = tide_http_client_request(c, url, o, &r), st;
    ssize_t n;
    *body = NULL;
    if (rc < 0)
        return rc;
    st = tide_http_resp_status(r);
    n = tide_http_resp_read_all(r, body, max);
    tide_http_resp_free(r);
    return n < 0 ? (int)n : st;
}

#endif
