/*
 * Helpers for the HTTP client tests (header-only, everything static).
 */
#ifndef TIDE_TEST_HTTP_UTIL_H
#define TIDE_TEST_HTTP_UTIL_H

#include "peer_util.h"
#include "tide.h"

/* In a function with an int rc and a label out: (its cleanup): when cond
 * is false, reports it (cmocka's print_error), sets rc to -1 and jumps to
 * out.  Needs <cmocka.h>. */
#define TT_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            print_error("%s:%d: %s\n", __FILE__, __LINE__, #cond);                                 \
            rc = -1;                                                                               \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

/* The test program's temporary directory (its group setup makes it, e.g.
 * with tt_certs_tmpdir(tt_dir(), TT_DIR_CAP, ...); empty until then). */
#define TT_DIR_CAP 64
static inline char *tt_dir(void)
{
    static char dir[TT_DIR_CAP];
    return dir;
}

/* dir/file for a file of tt_dir() (one of tt_path's rotating buffers). */
static inline const char *tt_dir_path(const char *file)
{
    return tt_path(tt_dir(), file);
}

/* A cmocka group teardown: removes tt_dir() and everything in it. */
static inline int tt_dir_teardown(void **st)
{
    (void)st;
    if (tt_dir()[0])
        (void)tt_rmtree(tt_dir());
    return 0;
}

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
