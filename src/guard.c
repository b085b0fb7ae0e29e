/*
 * Guards for the TIDE_WITH_* blocks (include/tide/guard.h).
 */
#include "tide_int.h"
#include "tide/guard.h"

#include <errno.h>

enum { G_TIMEOUT = 1, G_SHIELD, G_LOCK, G_SEM, G_GROUP, G_STREAM };

static int enter(tide_guard *g, int kind, void *obj, int *rc, int err)
{
    if (rc)
        *rc = err;
    if (err < 0)
        return 0;
    g->kind = kind;
    g->obj = obj;
    g->rc = rc;
    g->entered = 1;
    return 1;
}

int tide_guard_timeout(tide_guard *g, int64_t ms, int *rc)
{
    if (!g)
        return enter(g, 0, NULL, rc, -EINVAL);
    return enter(g, G_TIMEOUT, NULL, rc, tide_timeout_begin(&g->scope, ms));
}

int tide_guard_shield(tide_guard *g, int *rc)
{
    if (!g)
        return enter(g, 0, NULL, rc, -EINVAL);
    return enter(g, G_SHIELD, NULL, rc, tide_shield_begin(&g->scope));
}

int tide_guard_lock(tide_guard *g, tide_lock *l, int *rc)
{
    if (!g || !l)
        return enter(g, 0, NULL, rc, -EINVAL);
    return enter(g, G_LOCK, l, rc, tide_lock_acquire(l));
}

int tide_guard_sem(tide_guard *g, tide_sem *s, int *rc)
{
    if (!g || !s)
        return enter(g, 0, NULL, rc, -EINVAL);
    return enter(g, G_SEM, s, rc, tide_sem_acquire(s));
}

int tide_guard_group(tide_guard *g, tide_group *grp, int *rc)
{
    if (!g || !grp)
        return enter(g, 0, NULL, rc, -EINVAL);
    return enter(g, G_GROUP, grp, rc, tide_group_init(grp));
}

int tide_guard_stream(tide_guard *g, tide_stream *s, int *rc)
{
    if (!g || !s)
        return enter(g, 0, NULL, rc, -EINVAL);
    return enter(g, G_STREAM, s, rc, 0);
}

void tide_guard_exit(tide_guard *g)
{
    int rc = 0;

    if (!g || !g->entered)
        return;
    g->entered = 0;
    switch (g->kind) {
    case G_TIMEOUT:
        rc = tide_timeout_end(&g->scope);
        break;
    case G_SHIELD:
        rc = tide_shield_end(&g->scope);
        break;
    case G_LOCK:
        rc = tide_lock_release(g->obj);
        break;
    case G_SEM:
        rc = tide_sem_release(g->obj);
        break;
    case G_GROUP:
        rc = tide_group_wait(g->obj);
        break;
    case G_STREAM:
        rc = tide_stream_close(g->obj);
        break;
    }
    if (g->rc)
        *g->rc = rc;
}

void tide_auto_stream_close(tide_stream **s)
{
    if (s && *s) {
        (void)tide_stream_close(*s);
        *s = NULL;
    }
}

void tide_auto_future_free(tide_future **f)
{
    if (f && *f) {
        tide_future_free(*f);
        *f = NULL;
    }
}

void tide_auto_fd_close(int *fd)
{
    if (fd && *fd >= 0) {
        (void)tide_close(*fd);
        *fd = -1;
    }
}
