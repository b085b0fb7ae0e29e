/*
 * run_coroutine_threadsafe (tide_run_threadsafe / tide_cfuture_*): other
 * threads submit functions to a running loop and wait for their results
 * with blocking calls, with timeouts and cancellation from their side; and
 * tide_getnameinfo on the worker pool.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "tide.h"
#include "util.h"

static int payload;

static int quick_job(void *arg)
{
    tide_task_set_ptr(&payload);
    tide_sleep(1);
    return (int)(intptr_t)arg;
}

static tide_task *slow_task; /* atomic: read by the submitting thread */

static int slow_job(void *arg)
{
    (void)arg;
    __atomic_store_n(&slow_task, tide_current_task(), __ATOMIC_RELEASE);
    int rc = tide_sleep(100000);
    return rc == -ECANCELED ? -ECANCELED : 1;
}

static void stop_cb(void *arg)
{
    tide_loop_stop(arg);
}

typedef struct shared {
    tide_loop *loop;
    int failures;
    int deadlk;
} shared;

#define CHECK(c)                                                                            \
    do {                                                                                    \
        if (!(c)) {                                                                         \
            fprintf(stderr, "check failed at line %d: %s\n", __LINE__, #c);                 \
            s->failures++;                                                                  \
        }                                                                                   \
    } while (0)

static void *submitter(void *arg)
{
    shared *s = arg;
    tide_cfuture *cf[8];
    int result = 0, i;
    void *ptr = NULL;

    /* Several jobs in flight, each result to its own handle. */
    for (i = 0; i < 8; i++)
        CHECK(tide_run_threadsafe(s->loop, quick_job, (void *)(intptr_t)(i + 10), &cf[i]) == 0);
    for (i = 0; i < 8; i++) {
        CHECK(tide_cfuture_wait(cf[i], -1, &result, &ptr) == 0);
        CHECK(result == i + 10);
        CHECK(ptr == &payload);
        CHECK(tide_cfuture_done(cf[i]) == 1);
        CHECK(tide_cfuture_cancel(cf[i]) == -EALREADY);
        tide_cfuture_free(cf[i]);
    }

    /* A slow job: the wait times out, then cancel from this side. */
    CHECK(tide_run_threadsafe(s->loop, slow_job, NULL, &cf[0]) == 0);
    for (i = 0; i < 10000 && !__atomic_load_n(&slow_task, __ATOMIC_ACQUIRE); i++)
        usleep(1000); /* until the job has started (slow under valgrind) */
    CHECK(tide_cfuture_wait(cf[0], 30, &result, NULL) == -ETIMEDOUT);
    CHECK(tide_cfuture_done(cf[0]) == 0);
    /* The task is the loop's: cancelling it from here is refused. */
    {
        tide_task *st = __atomic_load_n(&slow_task, __ATOMIC_ACQUIRE);
        CHECK(st != NULL && tide_cancel(st) == -EPERM);
    }
    CHECK(tide_cfuture_cancel(cf[0]) == 0);
    CHECK(tide_cfuture_cancel(cf[0]) == 0); /* twice: harmless */
    CHECK(tide_cfuture_wait(cf[0], 10000, &result, NULL) == 0);
    CHECK(result == -ECANCELED);
    tide_cfuture_free(cf[0]);

    /* A handle dropped before the job ended: the job runs, nothing leaks. */
    CHECK(tide_run_threadsafe(s->loop, quick_job, NULL, &cf[0]) == 0);
    tide_cfuture_free(cf[0]);

    /* Errors. */
    CHECK(tide_run_threadsafe(NULL, quick_job, NULL, &cf[0]) == -EINVAL);
    CHECK(cf[0] == NULL);
    CHECK(tide_run_threadsafe(s->loop, NULL, NULL, &cf[0]) == -EINVAL);
    CHECK(tide_run_threadsafe(s->loop, quick_job, NULL, NULL) == -EINVAL);
    CHECK(tide_cfuture_wait(NULL, 0, NULL, NULL) == -EINVAL);
    CHECK(tide_cfuture_cancel(NULL) == -EINVAL);
    CHECK(tide_cfuture_done(NULL) == -EINVAL);
    tide_cfuture_free(NULL);

    usleep(20000);
    tide_call_soon_threadsafe(s->loop, stop_cb, s->loop);
    return NULL;
}

static void on_loop(void *arg)
{
    shared *s = arg;
    tide_cfuture *cf;
    /* On the loop's thread a blocking wait would hang the loop. */
    if (tide_run_threadsafe(s->loop, quick_job, NULL, &cf) == 0) {
        s->deadlk = tide_cfuture_wait(cf, 0, NULL, NULL);
        tide_cfuture_free(cf);
    }
}

static void test_threadsafe(void **state)
{
    shared s = {0};
    pthread_t th;

    (void)state;
    assert_int_equal(tide_loop_new(&s.loop), 0);
    assert_int_equal(tide_call_soon(s.loop, on_loop, &s), 0);
    assert_int_equal(pthread_create(&th, NULL, submitter, &s), 0);
    assert_int_equal(tide_loop_run_forever(s.loop), 0);
    pthread_join(th, NULL);
    assert_int_equal(s.failures, 0);
    assert_int_equal(s.deadlk, -EDEADLK);
    tide_loop_free(s.loop);
}

/* A job queued but not started when it is cancelled never runs. */
static int ran;
static int count_job(void *arg)
{
    (void)arg;
    ran++;
    return 0;
}

static void test_cancel_before_start(void **state)
{
    tide_loop *loop;
    tide_cfuture *cf;
    int result = 0;

    (void)state;
    assert_int_equal(tide_loop_new(&loop), 0);
    ran = 0;
    /* Submitted from this thread before the loop runs: queued only. */
    assert_int_equal(tide_run_threadsafe(loop, count_job, NULL, &cf), 0);
    assert_int_equal(tide_cfuture_cancel(cf), 0);
    assert_int_equal(tide_loop_run_once(loop) >= 0, 1);
    assert_int_equal(tide_cfuture_wait(cf, 1000, &result, NULL), 0);
    assert_int_equal(result, -ECANCELED);
    assert_int_equal(ran, 0);
    tide_cfuture_free(cf);
    tide_loop_free(loop);
}

/* ---------------------------------------------------------- getnameinfo */

static int main_nameinfo(void *arg)
{
    struct sockaddr_in sin;
    char host[64], serv[16], tiny[2];

    (void)arg;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(80);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(tide_getnameinfo((struct sockaddr *)&sin, sizeof sin, host, sizeof host, serv,
                                      sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV),
                     0);
    assert_string_equal(host, "127.0.0.1");
    assert_string_equal(serv, "80");
    assert_int_equal(tide_getnameinfo((struct sockaddr *)&sin, sizeof sin, NULL, 0, serv,
                                      sizeof serv, NI_NUMERICSERV),
                     0);
    assert_string_equal(serv, "80");
    /* A name lookup (localhost is in /etc/hosts; any name is fine). */
    assert_int_equal(tide_getnameinfo((struct sockaddr *)&sin, sizeof sin, host, sizeof host, NULL,
                                      0, 0),
                     0);
    assert_true(strlen(host) > 0);
    assert_int_equal(tide_getnameinfo((struct sockaddr *)&sin, sizeof sin, tiny, sizeof tiny, NULL,
                                      0, NI_NUMERICHOST),
                     -ENOSPC);
    assert_int_equal(tide_getnameinfo(NULL, sizeof sin, host, sizeof host, NULL, 0, 0), -EINVAL);
    assert_int_equal(tide_getnameinfo((struct sockaddr *)&sin, sizeof sin, NULL, 0, NULL, 0, 0),
                     -EINVAL);
    assert_int_equal(tide_getnameinfo((struct sockaddr *)&sin, 0, host, sizeof host, NULL, 0, 0),
                     -EINVAL);
    sin.sin_family = 12345; /* an unknown family */
    assert_true(tide_getnameinfo((struct sockaddr *)&sin, sizeof sin, host, sizeof host, NULL, 0,
                                 NI_NUMERICHOST) < 0);
    return 0;
}

static void test_getnameinfo(void **state)
{
    struct sockaddr_in sin;
    char host[64];

    (void)state;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    assert_int_equal(tide_getnameinfo((struct sockaddr *)&sin, sizeof sin, host, sizeof host, NULL,
                                      0, 0),
                     -EPERM);
    assert_int_equal(tide_run(main_nameinfo, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threadsafe),
        cmocka_unit_test(test_cancel_before_start),
        cmocka_unit_test(test_getnameinfo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
