/*
 * Tests of tasks: create/await, round-robin, sleep ordering, names, ids and
 * states, task_list, detach, gather, create_task_ex options, many tasks,
 * run_until_complete on a loop of one's own.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tide.h"
#include "util.h"
#include "vrun.h"

/* ------------------------------------------------------- create / await */

static int return_arg(void *arg)
{
    return (int)(intptr_t)arg;
}

static int sleep_then_return(void *arg)
{
    int rc = tide_sleep(10);
    if (rc != 0)
        return -1000 + rc;
    return (int)(intptr_t)arg;
}

typedef struct basic_state {
    int rc_create[4];
    int results[4];
    int started_before_yield;
} basic_state;

static int g_started;

static int mark_started(void *arg)
{
    (void)arg;
    g_started = 1;
    return 3;
}

static int basic_main(void *arg)
{
    basic_state *st = arg;
    tide_task *t[4];
    st->rc_create[0] = tide_create_task(&t[0], return_arg, (void *)(intptr_t)7);
    st->rc_create[1] = tide_create_task(&t[1], return_arg, (void *)(intptr_t)0);
    st->rc_create[2] = tide_create_task(&t[2], return_arg, (void *)(intptr_t)-EIO);
    st->rc_create[3] = tide_create_task(&t[3], sleep_then_return, (void *)(intptr_t)12345);
    for (int i = 0; i < 4; i++)
        st->results[i] = tide_await(t[i]);
    /* a new task does not start before its creator suspends */
    g_started = 0;
    tide_task *m;
    tide_create_task(&m, mark_started, NULL);
    st->started_before_yield = g_started;
    int r = tide_await(m);
    return r == 3 && g_started ? 99 : -1;
}

static void test_create_and_await(void **state)
{
    (void)state;
    basic_state st;
    memset(&st, 0, sizeof st);
    assert_int_equal(tt_vrun(basic_main, &st), 99);
    for (int i = 0; i < 4; i++)
        assert_int_equal(st.rc_create[i], 0);
    assert_int_equal(st.results[0], 7);
    assert_int_equal(st.results[1], 0);
    assert_int_equal(st.results[2], -EIO);
    assert_int_equal(st.results[3], 12345);
    assert_int_equal(st.started_before_yield, 0);
}

/* ----------------------------------------------------------- round robin */

typedef struct rr_state {
    char log[64];
    int n;
    int rc_bad;
} rr_state;

typedef struct rr_arg {
    rr_state *st;
    char name;
} rr_arg;

static int rr_task(void *arg)
{
    rr_arg *a = arg;
    for (int i = 0; i < 5; i++) {
        a->st->log[a->st->n++] = a->name;
        if (tide_sleep(0) != 0)
            a->st->rc_bad++;
    }
    return 0;
}

static int rr_main(void *arg)
{
    rr_state *st = arg;
    rr_arg args[3] = {{st, 'a'}, {st, 'b'}, {st, 'c'}};
    tide_task *t[3];
    for (int i = 0; i < 3; i++)
        if (tide_create_task(&t[i], rr_task, &args[i]) != 0)
            return -1;
    return tide_gather(t, 3, NULL);
}

static void test_round_robin_sleep0(void **state)
{
    (void)state;
    rr_state st;
    memset(&st, 0, sizeof st);
    assert_int_equal(tt_vrun(rr_main, &st), 0);
    assert_int_equal(st.rc_bad, 0);
    assert_int_equal(st.n, 15);
    st.log[st.n] = 0;
    assert_string_equal(st.log, "abcabcabcabcabc");
}

/* ------------------------------------------------------- sleep ordering */

typedef struct sleep_state {
    int order[8];
    int n;
    int64_t t0;
    int64_t woke[8];
} sleep_state;

typedef struct sleep_arg {
    sleep_state *st;
    int ms;
} sleep_arg;

static int sleeper(void *arg)
{
    sleep_arg *a = arg;
    int rc = tide_sleep(a->ms);
    a->st->woke[a->st->n] = tide_now() - a->st->t0;
    a->st->order[a->st->n++] = a->ms;
    return rc;
}

static int sleep_main(void *arg)
{
    sleep_state *st = arg;
    static const int ms[] = {50, 10, 30, 20, 40, 0};
    sleep_arg args[6];
    tide_task *t[6];
    st->t0 = tide_now();
    for (int i = 0; i < 6; i++) {
        args[i] = (sleep_arg){st, ms[i]};
        tide_create_task(&t[i], sleeper, &args[i]);
    }
    return tide_gather(t, 6, NULL);
}

static void test_sleep_ordering(void **state)
{
    (void)state;
    sleep_state st;
    memset(&st, 0, sizeof st);
    assert_int_equal(tt_vrun(sleep_main, &st), 0);
    assert_int_equal(st.n, 6);
    int want[] = {0, 10, 20, 30, 40, 50};
    for (int i = 0; i < 6; i++) {
        assert_int_equal(st.order[i], want[i]);
        assert_true(st.woke[i] >= want[i] - 1);
        assert_true(st.woke[i] < want[i] + 1000);
    }
}

/* ------------------------------------------------ names, ids and states */

typedef struct state_probe {
    tide_task *main_task, *worker, *p, *q;
    tide_task_state worker_self, main_from_worker;
    tide_task_state w_created, w_waiting, w_done, p_seen_by_q;
    tide_task_state main_self;
    char worker_name[64], default_name[64], long_name[64];
    uint64_t ids[4];
    uint64_t default_id;
    int worker_result;
    const char *state_names[5];
} state_probe;

static int worker_fn(void *arg)
{
    state_probe *sp = arg;
    sp->worker_self = tide_task_get_state(tide_current_task());
    sp->main_from_worker = tide_task_get_state(sp->main_task);
    tide_sleep(50);
    return 5;
}

static int p_fn(void *arg)
{
    (void)arg;
    tide_sleep(0);
    return 0;
}

static int q_fn(void *arg)
{
    state_probe *sp = arg;
    sp->p_seen_by_q = tide_task_get_state(sp->p);
    return 0;
}

static int states_main(void *arg)
{
    state_probe *sp = arg;
    sp->main_task = tide_current_task();
    sp->main_self = tide_task_get_state(sp->main_task);
    tide_task_opts o;
    tide_task_opts_init(&o);
    o.name = "worker";
    if (tide_create_task_ex(&sp->worker, NULL, worker_fn, sp, &o) != 0)
        return -1;
    sp->w_created = tide_task_get_state(sp->worker);
    snprintf(sp->worker_name, sizeof sp->worker_name, "%s", tide_task_name(sp->worker));

    tide_task *d;
    if (tide_create_task(&d, return_arg, NULL) != 0)
        return -2;
    snprintf(sp->default_name, sizeof sp->default_name, "%s", tide_task_name(d));
    sp->default_id = tide_task_id(d);

    tide_task *l;
    o.name = "0123456789abcdefghijklmnopqrstuvwxyz-this-is-long";
    if (tide_create_task_ex(&l, NULL, return_arg, NULL, &o) != 0)
        return -3;
    snprintf(sp->long_name, sizeof sp->long_name, "%s", tide_task_name(l));

    sp->ids[0] = tide_task_id(sp->main_task);
    sp->ids[1] = tide_task_id(sp->worker);
    sp->ids[2] = tide_task_id(d);
    sp->ids[3] = tide_task_id(l);

    tide_sleep(10); /* worker runs and sleeps 50 */
    sp->w_waiting = tide_task_get_state(sp->worker);
    tide_sleep(100); /* worker ended, not released */
    sp->w_done = tide_task_get_state(sp->worker);
    sp->worker_result = tide_await(sp->worker);
    tide_await(d);
    tide_await(l);

    /* READY: p yields with sleep(0) and q, running next, looks at p */
    tide_create_task(&sp->p, p_fn, sp);
    tide_create_task(&sp->q, q_fn, sp);
    tide_task *pq[2] = {sp->p, sp->q};
    tide_gather(pq, 2, NULL);
    for (int s = 0; s < 5; s++)
        sp->state_names[s] = tide_task_state_name((tide_task_state)s);
    return 0;
}

static void test_names_ids_states(void **state)
{
    (void)state;
    state_probe sp;
    memset(&sp, 0, sizeof sp);
    sp.p_seen_by_q = (tide_task_state)-1;
    assert_int_equal(tt_vrun(states_main, &sp), 0);
    assert_int_equal(sp.main_self, TIDE_TASK_RUNNING);
    assert_int_equal(sp.w_created, TIDE_TASK_CREATED);
    assert_int_equal(sp.worker_self, TIDE_TASK_RUNNING);
    assert_int_equal(sp.main_from_worker, TIDE_TASK_WAITING);
    assert_int_equal(sp.w_waiting, TIDE_TASK_WAITING);
    assert_int_equal(sp.w_done, TIDE_TASK_DONE);
    assert_int_equal(sp.worker_result, 5);
    assert_int_equal(sp.p_seen_by_q, TIDE_TASK_READY);
    assert_string_equal(sp.worker_name, "worker");
    char want[64];
    snprintf(want, sizeof want, "task-%llu", (unsigned long long)sp.default_id);
    assert_string_equal(sp.default_name, want);
    assert_int_equal(strlen(sp.long_name), TIDE_TASK_NAME_MAX - 1);
    assert_memory_equal(sp.long_name, "0123456789abcdefghijklmnopqrstuvwxyz", TIDE_TASK_NAME_MAX - 1);
    /* ids: >= 1, unique, increasing in creation order */
    assert_true(sp.ids[0] >= 1);
    for (int i = 1; i < 4; i++)
        assert_true(sp.ids[i] > sp.ids[i - 1]);
    for (int s = 0; s < 5; s++) {
        assert_non_null(sp.state_names[s]);
        for (int k = 0; k < s; k++)
            assert_true(strcmp(sp.state_names[s], sp.state_names[k]) != 0);
    }
}

/* ------------------------------------------------------------- task_list */

typedef struct list_state {
    ssize_t count0, count_all, count_after;
    ssize_t partial_rc;
    tide_task_info info[8];
    tide_task_info partial[2];
    tide_task *main_task, *t[3];
    char names[8][TIDE_TASK_NAME_MAX]; /* info[i].name is valid only while the task is */
} list_state;

static int sleepy(void *arg)
{
    return tide_sleep((int64_t)(intptr_t)arg);
}

static int list_main(void *arg)
{
    list_state *ls = arg;
    ls->main_task = tide_current_task();
    ls->count0 = tide_task_list(NULL, NULL, 0);
    static const char *names[3] = {"alpha", "beta", "gamma"};
    size_t stacks[3] = {0, 16 * 1024, 100000};
    for (int i = 0; i < 3; i++) {
        tide_task_opts o;
        tide_task_opts_init(&o);
        o.name = names[i];
        o.stack_size = stacks[i];
        if (tide_create_task_ex(&ls->t[i], NULL, sleepy, (void *)(intptr_t)30, &o) != 0)
            return -1;
    }
    tide_cancel(ls->t[2]);
    tide_sleep(5); /* alpha, beta sleep; gamma was cancelled before it started */
    ls->count_all = tide_task_list(tide_loop_current(), ls->info, 8);
    for (int i = 0; i < 8 && i < ls->count_all; i++)
        snprintf(ls->names[i], sizeof ls->names[i], "%s", ls->info[i].name ? ls->info[i].name : "(null)");
    ls->partial_rc = tide_task_list(NULL, ls->partial, 2);
    tide_gather(ls->t, 3, NULL);
    ls->count_after = tide_task_list(NULL, NULL, 0);
    return 0;
}

static void test_task_list(void **state)
{
    (void)state;
    list_state ls;
    memset(&ls, 0, sizeof ls);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    assert_int_equal(tt_vrun(list_main, &ls), 0);
    assert_int_equal(ls.count0, 1); /* main itself */
    assert_int_equal(ls.count_all, 4);
    assert_int_equal(ls.partial_rc, 4);
    assert_int_equal(ls.count_after, 1);
    /* creation order: main, alpha, beta, gamma */
    assert_ptr_equal(ls.info[0].task, ls.main_task);
    assert_int_equal(ls.info[0].state, TIDE_TASK_RUNNING);
    assert_ptr_equal(ls.partial[0].task, ls.main_task);
    const char *names[3] = {"alpha", "beta", "gamma"};
    size_t want_stack[3] = {TIDE_DEFAULT_STACK_SIZE, 16 * 1024, (100000 + page - 1) / page * page};
    for (int i = 0; i < 3; i++) {
        tide_task_info *in = &ls.info[i + 1];
        assert_ptr_equal(in->task, ls.t[i]);
        assert_string_equal(ls.names[i + 1], names[i]);
        assert_true(in->id > ls.info[i].id);
        assert_int_equal(in->stack_size, want_stack[i]);
    }
    assert_int_equal(ls.info[1].state, TIDE_TASK_WAITING);
    assert_int_equal(ls.info[2].state, TIDE_TASK_WAITING);
    assert_int_equal(ls.info[1].cancelled, 0);
    assert_int_equal(ls.info[3].cancelled, 1);
    assert_true(ls.info[3].state == TIDE_TASK_DONE || ls.info[3].state == TIDE_TASK_CREATED ||
                ls.info[3].state == TIDE_TASK_READY);
    assert_ptr_equal(ls.partial[1].task, ls.t[0]);
    /* outside a loop */
    assert_int_equal(tide_task_list(NULL, NULL, 0), -EINVAL);
}

/* ---------------------------------------------------------------- detach */

static int fail_eio(void *arg)
{
    (void)arg;
    tide_sleep(1);
    return -EIO;
}

static int ok_task(void *arg)
{
    (void)arg;
    tide_sleep(1);
    return 0;
}

static int cancelled_task(void *arg)
{
    (void)arg;
    return -ECANCELED;
}

typedef struct detach_state {
    int rc[3];
    int rc_null;
    int rc_twice;
} detach_state;

static int detach_main(void *arg)
{
    detach_state *ds = arg;
    tide_task *t;
    tide_task_opts o;
    tide_task_opts_init(&o);
    o.name = "failer-xyz";
    tide_create_task_ex(&t, NULL, fail_eio, NULL, &o);
    ds->rc[0] = tide_detach(t);
    o.name = "okay-xyz";
    tide_create_task_ex(&t, NULL, ok_task, NULL, &o);
    ds->rc[1] = tide_detach(t);
    o.name = "cancel-xyz";
    tide_create_task_ex(&t, NULL, cancelled_task, NULL, &o);
    ds->rc[2] = tide_detach(t);
    ds->rc_null = tide_detach(NULL);
    tide_sleep(50); /* all three end */
    return 0;
}

static void test_detach_logs_failure(void **state)
{
    (void)state;
    detach_state ds;
    memset(&ds, 0, sizeof ds);
    tt_capture cap = {-1, -1, -1};
    assert_int_equal(tt_capture_begin(&cap), 0);
    int rc = tt_vrun(detach_main, &ds);
    char *err = tt_capture_end(&cap);
    fprintf(stderr, "captured stderr: <<%s>>\n", err);
    assert_int_equal(rc, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(ds.rc[i], 0);
    assert_int_equal(ds.rc_null, -EINVAL);
    assert_non_null(strstr(err, "failer-xyz"));
    assert_null(strstr(err, "okay-xyz"));
    assert_null(strstr(err, "cancel-xyz"));
    free(err);
}

/* ---------------------------------------------------------------- gather */

typedef struct gather_state {
    int rc, rc_empty, rc_null_results;
    int results[5];
    int finished[5];
    ssize_t live_after;
} gather_state;

typedef struct gather_arg {
    gather_state *st;
    int idx, ms, ret;
} gather_arg;

static int gather_child(void *arg)
{
    gather_arg *a = arg;
    tide_sleep(a->ms);
    a->st->finished[a->idx] = 1;
    return a->ret;
}

static int gather_main(void *arg)
{
    gather_state *gs = arg;
    /* index 3 fails first in time, index 1 first in array order */
    gather_arg a[5] = {{gs, 0, 30, 0},   {gs, 1, 40, -ENOENT}, {gs, 2, 10, 20},
                       {gs, 3, 5, -EIO}, {gs, 4, 60, 40}};
    tide_task *t[5];
    for (int i = 0; i < 5; i++)
        tide_create_task(&t[i], gather_child, &a[i]);
    gs->rc = tide_gather(t, 5, gs->results);
    gs->live_after = tide_task_list(NULL, NULL, 0);
    gs->rc_empty = tide_gather(t, 0, NULL);
    tide_task *u[2];
    tide_create_task(&u[0], return_arg, (void *)(intptr_t)1);
    tide_create_task(&u[1], return_arg, (void *)(intptr_t)2);
    gs->rc_null_results = tide_gather(u, 2, NULL);
    return 0;
}

static void test_gather(void **state)
{
    (void)state;
    gather_state gs;
    memset(&gs, 0, sizeof gs);
    assert_int_equal(tt_vrun(gather_main, &gs), 0);
    assert_int_equal(gs.rc, -ENOENT);
    int want[5] = {0, -ENOENT, 20, -EIO, 40};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(gs.results[i], want[i]);
        assert_int_equal(gs.finished[i], 1); /* waited for all */
    }
    assert_int_equal(gs.live_after, 1);
    assert_int_equal(gs.rc_empty, 0);
    assert_int_equal(gs.rc_null_results, 0);
}

/* ----------------------------------------------------- create_task_ex */

typedef struct ex_state {
    int rc_small, rc_min_minus, rc_huge, rc_min, rc_null_opts, rc_odd;
    int res_min, res_null_opts, res_odd;
    char name[64];
} ex_state;

static int touch_stack(void *arg)
{
    size_t n = (size_t)(intptr_t)arg;
    char buf[n];
    memset(buf, 0x5a, n);
    int s = 0;
    for (size_t i = 0; i < n; i += 512)
        s += buf[i];
    tide_sleep(0);
    return s > 0 ? 1 : -1;
}

static int ex_main(void *arg)
{
    ex_state *es = arg;
    tide_task *t;
    tide_task_opts o;
    tide_task_opts_init(&o);
    o.name = "small";
    o.stack_size = 1000;
    es->rc_small = tide_create_task_ex(&t, NULL, return_arg, NULL, &o);
    o.stack_size = TIDE_MIN_STACK_SIZE - 1;
    es->rc_min_minus = tide_create_task_ex(&t, NULL, return_arg, NULL, &o);
    o.stack_size = (size_t)1 << 30;
    o.stack_size += 4096;
    es->rc_huge = tide_create_task_ex(&t, NULL, return_arg, NULL, &o);

    o.stack_size = TIDE_MIN_STACK_SIZE;
    o.name = "min-stack";
    es->rc_min = tide_create_task_ex(&t, NULL, touch_stack, (void *)(intptr_t)4096, &o);
    if (es->rc_min == 0) {
        snprintf(es->name, sizeof es->name, "%s", tide_task_name(t));
        es->res_min = tide_await(t);
    }
    es->rc_null_opts = tide_create_task_ex(&t, NULL, touch_stack, (void *)(intptr_t)65536, NULL);
    if (es->rc_null_opts == 0)
        es->res_null_opts = tide_await(t);
    o.stack_size = 100000; /* rounded up to pages */
    es->rc_odd = tide_create_task_ex(&t, tide_loop_current(), touch_stack,
                                     (void *)(intptr_t)50000, &o);
    if (es->rc_odd == 0)
        es->res_odd = tide_await(t);
    return 0;
}

static void test_create_task_ex_options(void **state)
{
    (void)state;
    ex_state es;
    memset(&es, 0, sizeof es);
    assert_int_equal(tt_vrun(ex_main, &es), 0);
    assert_int_equal(es.rc_small, -EINVAL);
    assert_int_equal(es.rc_min_minus, -EINVAL);
    assert_int_equal(es.rc_huge, -EINVAL);
    assert_int_equal(es.rc_min, 0);
    assert_int_equal(es.res_min, 1);
    assert_string_equal(es.name, "min-stack");
    assert_int_equal(es.rc_null_opts, 0);
    assert_int_equal(es.res_null_opts, 1);
    assert_int_equal(es.rc_odd, 0);
    assert_int_equal(es.res_odd, 1);
}

/* ------------------------------------------------------------ many tasks */

typedef struct many_state {
    int n;
    int counter;
    int bad_rc;
    int rc_create_fail;
    int gather_rc;
    int64_t elapsed;
} many_state;

static int many_sleeper(void *arg)
{
    many_state *ms = arg;
    int rc = tide_sleep(10 + (tide_task_id(tide_current_task()) % 41));
    if (rc != 0)
        ms->bad_rc++;
    ms->counter++;
    return 0;
}

static int many_main(void *arg)
{
    many_state *ms = arg;
    tide_task **t = calloc((size_t)ms->n, sizeof *t);
    if (!t)
        return -ENOMEM;
    tide_task_opts o;
    tide_task_opts_init(&o);
    o.stack_size = 16 * 1024;
    int64_t t0 = tide_now();
    int created = 0;
    for (int i = 0; i < ms->n; i++) {
        int rc = tide_create_task_ex(&t[i], NULL, many_sleeper, ms, &o);
        if (rc != 0) {
            ms->rc_create_fail = rc;
            break;
        }
        created++;
    }
    ms->gather_rc = tide_gather(t, (size_t)created, NULL);
    ms->elapsed = tide_now() - t0;
    free(t);
    return 0;
}

static void test_100k_sleeping_tasks(void **state)
{
    (void)state;
    many_state ms;
    memset(&ms, 0, sizeof ms);
    /* Under TSan every live task is a fiber with a shadow-stack mapping of
     * its own (512 KiB): 100 000 at once run out of mappings. */
    ms.n = tt_under_valgrind() || tt_under_tsan() ? 10000 : 100000;
    assert_int_equal(tt_vrun(many_main, &ms), 0);
    assert_int_equal(ms.rc_create_fail, 0);
    assert_int_equal(ms.gather_rc, 0);
    assert_int_equal(ms.bad_rc, 0);
    assert_int_equal(ms.counter, ms.n);
    print_message("%d tasks in %lld ms\n", ms.n, (long long)ms.elapsed);
}

/* -------------------------------------------------- run_until_complete */

typedef struct ruc_state {
    int cleanup_ran;
    int leftover_rc;
    int sub_result;
    tide_loop *seen_loop;
} ruc_state;

static int leftover(void *arg)
{
    ruc_state *rs = arg;
    rs->leftover_rc = tide_sleep(1000000);
    rs->cleanup_ran = 1;
    return 0;
}

static int ruc_main(void *arg)
{
    ruc_state *rs = arg;
    rs->seen_loop = tide_loop_current();
    tide_task *sub, *lo;
    tide_create_task(&sub, sleep_then_return, (void *)(intptr_t)21);
    rs->sub_result = tide_await(sub);
    tide_create_task(&lo, leftover, rs);
    tide_detach(lo);
    tide_sleep(5); /* leftover started and sleeps */
    return rs->sub_result * 2;
}

static void test_run_until_complete(void **state)
{
    (void)state;
    ruc_state rs;
    memset(&rs, 0, sizeof rs);
    rs.leftover_rc = 1;
    tide_loop *loop;
    assert_int_equal(tide_loop_new(&loop), 0);
    tide_task *t;
    assert_int_equal(tide_create_task_ex(&t, loop, ruc_main, &rs, NULL), 0);
    assert_int_equal(tide_task_get_state(t), TIDE_TASK_CREATED);
    assert_int_equal(tide_loop_run_until_complete(loop, t), 42);
    assert_ptr_equal(rs.seen_loop, loop);
    assert_null(tide_loop_current());
    assert_int_equal(rs.cleanup_ran, 0);
    /* the loop can run another task */
    assert_int_equal(tide_create_task_ex(&t, loop, return_arg, (void *)(intptr_t)8, NULL), 0);
    assert_int_equal(tide_loop_run_until_complete(loop, t), 8);
    /* freeing cancels and finishes the leftover */
    tide_loop_free(loop);
    assert_int_equal(rs.cleanup_ran, 1);
    assert_int_equal(rs.leftover_rc, -ECANCELED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_and_await),
        cmocka_unit_test(test_round_robin_sleep0),
        cmocka_unit_test(test_sleep_ordering),
        cmocka_unit_test(test_names_ids_states),
        cmocka_unit_test(test_task_list),
        cmocka_unit_test(test_detach_logs_failure),
        cmocka_unit_test(test_gather),
        cmocka_unit_test(test_create_task_ex_options),
        cmocka_unit_test(test_100k_sleeping_tasks),
        cmocka_unit_test(test_run_until_complete),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
