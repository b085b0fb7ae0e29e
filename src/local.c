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

/* Destructors by key id - 1 (tide_local_key_init_ex).  A key with one
 * stores its values boxed with a count of the tasks (and tokens) holding
 * them, since a new task shares its creator's values: the destructor runs
 * once nobody holds the value.  All holders are tasks of one loop, so the
 * count needs no atomics. */
static void (*dtors[MAX_KEYS])(void *);

typedef struct box {
    long refs;
    void *value;
    void (*dtor)(void *);
} box;

static void box_unref(box *b)
{
    if (b && --b->refs == 0) {
        if (b->value)
            b->dtor(b->value);
        tide__free(b);
    }
}

/* The slot value of key id for a task, as seen by tide_local_get. */
static void *unbox(unsigned id, void *slot)
{
    if (dtors[id - 1])
        return slot ? ((box *)slot)->value : NULL;
    return slot;
}

int tide_local_key_init_ex(tide_local_key *k, void (*dtor)(void *value))
{
    int rc = tide_local_key_init(k);

    if (rc == 0)
        __atomic_store_n(&dtors[k->id - 1], dtor, __ATOMIC_RELEASE);
    return rc;
}

void tide__locals_release(tide_task *t)
{
    unsigned i;

    for (i = 0; i < t->nlocals && i < MAX_KEYS; i++)
        if (t->locals[i] && dtors[i])
            box_unref(t->locals[i]);
    tide__free(t->locals);
    t->locals = NULL;
    t->nlocals = 0;
}

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
    for (unsigned i = 0; i < child->nlocals && i < MAX_KEYS; i++)
        if (child->locals[i] && dtors[i])
            ((box *)child->locals[i])->refs++;
    return 0;
}

/* Makes room for key id in cur's values. */
static int grow(tide_task *cur, unsigned id)
{
    if (id > cur->nlocals) {
        unsigned n = cur->nlocals ? cur->nlocals : 8;
        void **v;
        while (n < id)
            n *= 2;
        v = tide__realloc(cur->locals, n * sizeof *v);
        if (!v)
            return -ENOMEM;
        memset(v + cur->nlocals, 0, (n - cur->nlocals) * sizeof *v);
        cur->locals = v;
        cur->nlocals = n;
    }
    return 0;
}

/* Sets key id's slot of cur to value; the old slot goes to *old (its
 * reference with it) or is dropped when old is NULL. */
static int set_slot(tide_task *cur, unsigned id, void *value, void **old)
{
    void (*dtor)(void *) = dtors[id - 1];
    void *slot = value;
    int rc = grow(cur, id);

    if (rc < 0)
        return rc;
    if (dtor && value) {
        box *b = tide__malloc(sizeof *b);
        if (!b)
            return -ENOMEM;
        b->refs = 1;
        b->value = value;
        b->dtor = dtor;
        slot = b;
    }
    if (old)
        *old = cur->locals[id - 1];
    else if (dtor)
        box_unref(cur->locals[id - 1]);
    cur->locals[id - 1] = slot;
    return 0;
}

int tide_local_set_token(const tide_local_key *k, void *value, tide_local_token *tok)
{
    tide_task *cur = tide__current();
    int rc;

    if (!k || !tok || k->id == 0 || k->id > MAX_KEYS)
        return -EINVAL;
    if (!cur)
        return -EPERM;
    rc = set_slot(cur, k->id, value, &tok->old);
    if (rc < 0)
        return rc;
    tok->id = k->id;
    tok->task = cur;
    tok->used = 0;
    return 0;
}

int tide_local_reset(const tide_local_key *k, tide_local_token *tok)
{
    tide_task *cur = tide__current();

    if (!k || !tok || k->id == 0 || k->id > MAX_KEYS || tok->id != k->id)
        return -EINVAL;
    if (!cur)
        return -EPERM;
    if (tok->task != cur)
        return -EINVAL; /* made in another task (contextvars: another Context) */
    if (tok->used)
        return -EALREADY;
    /* The slot exists: set_token made it. */
    if (dtors[k->id - 1])
        box_unref(cur->locals[k->id - 1]);
    cur->locals[k->id - 1] = tok->old;
    tok->old = NULL;
    tok->used = 1;
    return 0;
}

void *tide_local_token_old(const tide_local_token *tok)
{
    if (!tok || tok->id == 0 || tok->id > MAX_KEYS || tok->used)
        return NULL;
    return unbox(tok->id, tok->old);
}

int tide_local_set(const tide_local_key *k, void *value)
{
    tide_task *cur = tide__current();

    if (!k || k->id == 0 || k->id > MAX_KEYS)
        return -EINVAL;
    if (!cur)
        return -EPERM;
    return set_slot(cur, k->id, value, NULL);
}

void *tide_local_get(const tide_local_key *k)
{
    tide_task *cur = tide__current();

    if (!k || !cur || k->id == 0 || k->id > cur->nlocals)
        return NULL;
    return unbox(k->id, cur->locals[k->id - 1]);
}
