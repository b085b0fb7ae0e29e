/*
 * Misuse that would corrupt memory, reported loudly instead.
 *
 * A cancel scope or a task group lives on its task's stack.  Left open when
 * the function holding it returns, it stays linked to the task while its
 * memory goes to whatever frame comes next: a later suspension would walk
 * (and a deadline write into) a dead scope, and a group's members would
 * write into the dead frame as they end.  The task's return checks that
 * every scope and group it began has ended; cancel.c, group.c and
 * tide__suspend check the links they walk (see tide_int.h).  What they find
 * is reported here, as a stack overflow is (stack.c): one line on stderr
 * naming the task and what was left open, then abort().
 *
 * The report reads nothing from the dead frame: kinds and counts come from
 * the task struct, and the line is put together on this stack by hand, as
 * little of it as printf would take.
 */
#include "tide_int.h"

#include <string.h>
#include <unistd.h>

typedef struct msg {
    char buf[768];
    size_t n;
} msg;

static void add(msg *m, const char *s)
{
    size_t k = strlen(s);

    if (k > sizeof m->buf - 1 - m->n)
        k = sizeof m->buf - 1 - m->n;
    memcpy(m->buf + m->n, s, k);
    m->n += k;
}

static void add_u64(msg *m, uint64_t v)
{
    char tmp[24];
    size_t i = sizeof tmp - 1;

    tmp[i] = '\0';
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    add(m, tmp + i);
}

static void add_task(msg *m, const tide_task *t)
{
    char name[TIDE_TASK_NAME_MAX];

    add(m, "task '");
    if (t->name[0]) {
        memcpy(name, t->name, sizeof name);
        name[sizeof name - 1] = '\0';
        add(m, name);
    } else {
        add(m, "task-");
        add_u64(m, t->id);
    }
    add(m, "' (id ");
    add_u64(m, t->id);
    add(m, ")");
}

__attribute__((noreturn)) static void die(msg *m)
{
    ssize_t w;

    add(m, "; aborting\n");
    if (m->n == sizeof m->buf - 1)
        m->buf[m->n - 1] = '\n';
    w = write(2, m->buf, m->n);
    (void)w;
    abort();
}

/* The kind of the idx-th innermost scope of t: 0 timeout, 1 shield, -1
 * unknown (deeper than the kinds the task keeps). */
static int kind_of(const tide_task *t, unsigned idx)
{
    if (idx >= 32 || idx >= t->nscopes)
        return -1;
    return (int)((t->scope_kinds >> idx) & 1);
}

/* 1 if the idx-th innermost scope of t is a task group's own (reported as
 * the group). */
static int group_scope(const tide_task *t, unsigned idx)
{
    return idx < 32 && idx < t->nscopes && ((t->scope_groups >> idx) & 1);
}

static const char *const kind_name[3] = {"cancel scope", "timeout scope", "shield"};
static const char *const kind_hint[3] = {
    "a scope's begin without its end",
    "tide_timeout_begin without tide_timeout_end",
    "tide_shield_begin without tide_shield_end",
};

static void add_scope(msg *m, int kind, const char *what)
{
    add(m, kind == 1 ? "a shield " : kind == 0 ? "a timeout scope " : "a cancel scope ");
    add(m, what);
    add(m, " (");
    add(m, kind_hint[kind + 1]);
    add(m, ")");
}

void tide__misuse_returned(tide_task *t)
{
    /* Each open group of the task holds one scope of its chain (the
     * owner's scope, group.c): those are reported as groups. */
    unsigned user = t->nscopes > t->ngroups ? t->nscopes - t->ngroups : 0;
    unsigned i, shown = user < 4 ? user : 4;
    msg m = {.n = 0};

    add(&m, "tide: ");
    add_task(&m, t);
    add(&m, " returned with ");
    for (i = 0, shown = 0; i < t->nscopes && shown < 4; i++) {
        if (group_scope(t, i))
            continue;
        if (shown++)
            add(&m, ", ");
        add_scope(&m, kind_of(t, i), "still open");
    }
    if (user > shown) {
        add(&m, " and ");
        add_u64(&m, user - shown);
        add(&m, " more cancel scopes still open");
    }
    if (t->groups) {
        if (user)
            add(&m, ", ");
        if (t->ngroups > 1) {
            add_u64(&m, t->ngroups);
            add(&m, " task groups");
        } else {
            add(&m, "a task group");
        }
        add(&m, " not waited for (tide_group_init without tide_group_wait)");
    }
    die(&m);
}

void tide__misuse_scope(tide_task *t, const tide_scope *s, int why)
{
    const tide_scope *x;
    unsigned idx = 0;
    int kind;
    msg m = {.n = 0};

    /* The links before s were checked by the walk that found it. */
    for (x = t->scope; x && x != s && idx < t->nscopes; x = x->parent)
        idx++;
    kind = x == s ? kind_of(t, idx) : -1;
    if (x == s && group_scope(t, idx)) /* a group's scope: the group was left */
        tide__misuse_group(tide__container_of(s, tide_group, scope), why, t, NULL);
    add(&m, "tide: ");
    add_task(&m, t);
    add(&m, ": ");
    if (why == TIDE__MISUSE_AGAIN) {
        add(&m, "a ");
        add(&m, kind_name[kind + 1]);
        add(&m, " was begun again while still open (begun twice, or ");
        add(&m, kind_hint[kind + 1]);
        add(&m, ")");
    } else {
        add(&m, "a ");
        add(&m, kind_name[kind + 1]);
        add(&m, " was left open by a function that returned (");
        add(&m, kind_hint[kind + 1]);
        add(&m, "): its memory now belongs to other frames");
    }
    die(&m);
}

static int holds(const tide_task *t, const void *p)
{
    return (uintptr_t)p - (uintptr_t)t->stack_lo < (uintptr_t)t - (uintptr_t)t->stack_lo;
}

void tide__misuse_group(const tide_group *g, int why, const tide_task *owner,
                        const tide_task *member)
{
    tide_loop *loop = member ? member->loop : tide__tls_loop;
    const tide_task *o = owner, *t;
    msg m = {.n = 0};

    /* Whose stack holds it (g's own fields may be garbage by now). */
    for (t = loop ? loop->tasks.head : NULL; t && !o; t = t->next)
        if (holds(t, g))
            o = t;
    add(&m, "tide: ");
    if (o) {
        add_task(&m, o);
        add(&m, ": ");
    }
    if (why == TIDE__MISUSE_AGAIN) {
        add(&m, "tide_group_init on a task group that is still open (tide_group_init "
                "without tide_group_wait before it; its tasks still point at it)");
    } else if (o) {
        add(&m, "a task group was left open by a function that returned (tide_group_init "
                "without tide_group_wait): its tasks would write into the dead frame");
    } else {
        add(&m, "a task group was freed or overwritten while its tasks ran (it must "
                "stay until tide_group_wait returns)");
    }
    if (member) {
        add(&m, "; noticed as its ");
        add_task(&m, member);
        add(&m, " ended");
    }
    die(&m);
}
