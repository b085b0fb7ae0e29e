/*
 * Task-local values, like Python's contextvars: a key is made once; each
 * task has its own value for it; a new task starts with a copy of the values
 * of the task that created it (later changes on either side stay apart).
 *
 * A task's values are an array indexed by key id, allocated on the first
 * set (or inherited), so tasks that use none cost nothing.
 */
#include "tide_int.h"

#include <errno.h>
#include <string.h>

#define MAX_KEYS 1024

static unsigned next_key = 1; /* atomic; 0 marks an uninitialised key */

int tide_local_key_init(tide_local_key *k)
{
    unsigned id;

    if (!k)
        return -EINVAL;
    id = __atomic_fetch_add(&next_key, 1, __ATOMIC_RELAXED);
    if (id > MAX_KEYS)
        return -ENOSPC;
    k->id = id;
    return 0;
}

int tide__locals_inherit(tide_task *child, const tide_task *parent)
{
    child->locals = tide__malloc(parent->nlocals * sizeof *child->locals);
    if (!child->locals)
        return -ENOMEM;
    memcpy(child->locals, parent->locals, parent->nlocals * sizeof *child->locals);
    child->nlocals = parent->nlocals;
    return 0;
}

int tide_local_set(const tide_local_key *k, void *value)
{
    tide_task *cur = tide__current();

    if (!k || k->id == 0 || k->id > MAX_KEYS)
        return -EINVAL;
    if (!cur)
        return -EPERM;
    if (k->id > cur->nlocals) {
        unsigned n = cur->nlocals ? cur->nlocals : 8;
        void **v;
        while (n < k->id)
            n *= 2;
        v = tide__realloc(cur->locals, n * sizeof *v);
        if (!v)
            return -ENOMEM;
        memset(v + cur->nlocals, 0, (n - cur->nlocals) * sizeof *v);
        cur->locals = v;
        cur->nlocals = n;
    }
    cur->locals[k->id - 1] = value;
    return 0;
}

void *tide_local_get(const tide_local_key *k)
{
    tide_task *cur = tide__current();

    if (!k || !cur || k->id == 0 || k->id > cur->nlocals)
        return NULL;
    return cur->locals[k->id - 1];
}
