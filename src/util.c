/*
 * Small things every file needs: the allocator hook and error names.
 */
#include "tide_int.h"
#include "tide/tls.h"

#include <errno.h>
#include <string.h>

static void *(*a_malloc)(size_t) = malloc;
static void *(*a_realloc)(void *, size_t) = realloc;
static void *(*a_calloc)(size_t, size_t) = calloc;
static void (*a_free)(void *) = free;

int tide_replace_allocator(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
                           void *(*calloc_fn)(size_t, size_t), void (*free_fn)(void *))
{
    if (!malloc_fn || !realloc_fn || !calloc_fn || !free_fn)
        return -EINVAL;
    a_malloc = malloc_fn;
    a_realloc = realloc_fn;
    a_calloc = calloc_fn;
    a_free = free_fn;
    return 0;
}

void *tide__malloc(size_t n)
{
    return a_malloc(n);
}

void *tide__calloc(size_t n, size_t size)
{
    return a_calloc(n, size);
}

void *tide__realloc(void *p, size_t n)
{
    return a_realloc(p, n);
}

void tide__free(void *p)
{
    if (p)
        a_free(p);
}

const char *tide__eai_strerror(int err);

const char *tide_strerror(int err)
{
    if (err == 0)
        return "success";
    if (err > 0)
        err = -err; /* be forgiving: a positive errno names the same error */
    if (err < 0 && TIDE_IS_EAI(err))
        return tide__eai_strerror(err);
    if (TIDE_IS_TLS_ERR(err)) { /* names only: no OpenSSL needed here */
        switch (err) {
        case TIDE_TLS_ERR_VERIFY:
            return "TLS: certificate verification failed";
        case TIDE_TLS_ERR_HANDSHAKE:
            return "TLS: handshake failed";
        case TIDE_TLS_ERR_PROTOCOL:
            return "TLS: protocol error";
        case TIDE_TLS_ERR_TRUNCATED:
            return "TLS: peer closed the connection without close_notify";
        case TIDE_TLS_ERR_CONFIG:
            return "TLS: unusable certificate, key or CA";
        default:
            return "TLS: unknown error";
        }
    }
    if (err == -EPERM)
        return "Operation not permitted (outside a task?)";
    return strerror(-err);
}
