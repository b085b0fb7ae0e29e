/*
 * The TIDE_WITH_* blocks and cleanup helpers (include/tide/guard.h): each
 * gives its resource back when the body ends, on break, on continue and
 * (gcc/clang) on return; a failed acquire skips the body with the error.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tide.h"
#include "util.h"

static tide_lock lock;
static tide_sem sem;

static int return_inside(void *arg)
{
    int rc;
    (void)arg;
    TIDE_WITH_LOCK(&lock, rc) {
        assert_int_equal(tide_lock_locked(&lock), 1);
        return 42; /* the cleanup releases it */
    }
    return -1;
}

static int timeout_return(void *arg)
{
    (void)arg;
    TIDE_WITH_TIMEOUT(1000) {
        return 3; /* the scope ends with the block: no misuse report */
    }
    return -1;
}

static int holder(void *arg)
{
    int rc;
    (void)arg;
    TIDE_WITH_LOCK(&lock, rc) {
        tide_sleep(100000);
    }
    return rc;
}

static int main_lock(void *arg)
{
    int rc = 1, i, entered = 0;
    tide_task *t;

    (void)arg;
    tide_lock_init(&lock);
    TIDE_WITH_LOCK(&lock, rc) {
        assert_int_equal(tide_lock_locked(&lock), 1);
        entered++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(entered, 1);
    assert_int_equal(tide_lock_locked(&lock), 0);

    /* break and continue leave the block, releasing. */
    for (i = 0; i < 3; i++) {
        TIDE_WITH_LOCK(&lock, rc) {
            if (i == 1)
                break;
            if (i == 2)
                continue;
            entered++;
        }
        assert_int_equal(tide_lock_locked(&lock), 0);
    }
    assert_int_equal(i, 3); /* break left the block, not the loop */
    assert_int_equal(entered, 2);

    /* return inside (gcc/clang): released. */
    assert_int_equal(tide_create_task(&t, return_inside, NULL), 0);
    assert_int_equal(tide_await(t), 42);
    assert_int_equal(tide_lock_locked(&lock), 0);
    assert_int_equal(tide_create_task(&t, timeout_return, NULL), 0);
    assert_int_equal(tide_await(t), 3);

    /* A failed acquire skips the body: cancelled while waiting. */
    assert_int_equal(tide_create_task(&t, holder, NULL), 0);
    tide_sleep(0);
    tide_sleep(0);
    assert_int_equal(tide_lock_locked(&lock), 1);
    {
        tide_scope s;
        tide_timeout_begin(&s, 10);
        entered = 0;
        TIDE_WITH_LOCK(&lock, rc) {
            entered = 1;
        }
        tide_timeout_end(&s);
    }
    assert_int_equal(rc, -ETIMEDOUT);
    assert_int_equal(entered, 0);
    tide_cancel(t);
    assert_int_equal(tide_await(t), 0);
    assert_int_equal(tide_lock_locked(&lock), 0);
    TIDE_WITH_LOCK(NULL, rc) {
        fail();
    }
    assert_int_equal(rc, -EINVAL);
    return 0;
}

static void test_lock_guard(void **state)
{
    (void)state;
    assert_int_equal(tide_run(main_lock, NULL), 0);
}

static int main_timeout(void *arg)
{
    int rc = 1, rc2 = 1, after = 0;

    (void)arg;
    TIDE_WITH_TIMEOUT_RC(10, rc) {
        assert_int_equal(tide_sleep(10000), -ETIMEDOUT);
    }
    assert_int_equal(rc, -ETIMEDOUT);
    TIDE_WITH_TIMEOUT_RC(10000, rc) {
        assert_int_equal(tide_sleep(1), 0);
    }
    assert_int_equal(rc, 0);
    /* Nested, inner cut by outer; break out of the inner. */
    TIDE_WITH_TIMEOUT_RC(20, rc) {
        TIDE_WITH_TIMEOUT_RC(10000, rc2) {
            assert_int_equal(tide_sleep(10000), -ETIMEDOUT);
            break;
        }
        after = 1;
    }
    assert_int_equal(after, 1);
    assert_int_equal(rc2, 0);
    assert_int_equal(rc, -ETIMEDOUT);
    TIDE_WITH_TIMEOUT(5) {
        tide_sleep(10000);
    }
    assert_int_equal(tide_sleep(0), 0); /* the scope is gone */

    /* A shield: a cancel scope's deadline waits for its end. */
    TIDE_WITH_TIMEOUT_RC(5, rc) {
        TIDE_WITH_SHIELD() {
            assert_int_equal(tide_sleep(20), 0);
        }
        assert_int_equal(tide_sleep(0), -ETIMEDOUT);
    }
    assert_int_equal(rc, -ETIMEDOUT);
    return 0;
}

static void test_timeout_guard(void **state)
{
    int rc = 1;
    (void)state;
    assert_int_equal(tide_run(main_timeout, NULL), 0);
    /* Outside a task: begin fails, the body is skipped. */
    TIDE_WITH_TIMEOUT_RC(10, rc) {
        fail();
    }
    assert_int_equal(rc, -EPERM);
}

static int sem_user(void *arg)
{
    int rc, *inside = arg;
    TIDE_WITH_SEM(&sem, rc) {
        (*inside)++;
        assert_true(*inside <= 2);
        tide_sleep(2);
        (*inside)--;
    }
    return rc;
}

static int failer(void *arg)
{
    (void)arg;
    tide_sleep(5);
    return -EIO;
}

static int sleeper(void *arg)
{
    (void)arg;
    return tide_sleep(100000);
}

static int main_sem_group(void *arg)
{
    tide_group g;
    int rc = 1, inside = 0, i;

    (void)arg;
    tide_sem_init(&sem, 2);
    TIDE_WITH_GROUP(&g, rc) {
        for (i = 0; i < 6; i++)
            assert_int_equal(tide_group_spawn(&g, sem_user, &inside, NULL, NULL), 0);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(tide_sem_value(&sem), 2);

    /* A failing member: the wait at the block's end returns it. */
    TIDE_WITH_GROUP(&g, rc) {
        tide_group_spawn(&g, failer, NULL, NULL, NULL);
        tide_group_spawn(&g, sleeper, NULL, NULL, NULL);
    }
    assert_int_equal(rc, -EIO);
    TIDE_WITH_SEM(NULL, rc) {
        fail();
    }
    assert_int_equal(rc, -EINVAL);
    return 0;
}

static void test_sem_group_guard(void **state)
{
    (void)state;
    assert_int_equal(tide_run(main_sem_group, NULL), 0);
}

static int main_stream(void *arg)
{
    int sv[2], rc = 1;
    tide_stream *s;
    char buf[8];

    (void)arg;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(tide_stream_open(&s, sv[0], NULL), 0);
    TIDE_WITH_STREAM(s, rc) {
        assert_int_equal(tide_stream_write(s, "hi", 2), 2);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(tide_read(sv[1], buf, sizeof buf), 2);
    assert_int_equal(tide_read(sv[1], buf, sizeof buf), 0); /* closed: EOF */
    tide_close(sv[1]);
    TIDE_WITH_STREAM(NULL, rc) {
        fail();
    }
    assert_int_equal(rc, -EINVAL);

#if TIDE_GUARD_CLEANUP
    {
        int fd2[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fd2), 0);
        {
            tide_stream *a TIDE_AUTO_STREAM = NULL;
            int b TIDE_AUTO_FD = fd2[1];
            tide_future *f TIDE_AUTO_FUTURE = NULL;
            assert_int_equal(tide_future_new(&f), 0);
            assert_int_equal(tide_stream_open(&a, fd2[0], NULL), 0);
            assert_int_equal(tide_stream_write(a, "x", 1), 1);
            assert_int_equal(tide_read(b, buf, 1), 1);
        }
        assert_int_equal(fcntl(fd2[0], F_GETFD), -1); /* both closed */
        assert_int_equal(fcntl(fd2[1], F_GETFD), -1);
    }
#endif
    return 0;
}

static void test_stream_guard(void **state)
{
    (void)state;
    assert_int_equal(tide_run(main_stream, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lock_guard),
        cmocka_unit_test(test_timeout_guard),
        cmocka_unit_test(test_sem_group_guard),
        cmocka_unit_test(test_stream_guard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
