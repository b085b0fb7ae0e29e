/*
 * The program tests/gdb/run.sh debugs: a few tasks suspended in known
 * functions, then a stop in gdb_stop_here() for gdb (live, then the core).
 */
#include <stdio.h>

#include "tide.h"

static volatile int sink;
static tide_event ev;

__attribute__((noinline)) void gdb_stop_here(void)
{
    sink++;
    __asm__ volatile("" ::: "memory");
}

static __attribute__((noinline)) int gdb_sleeper_body(void *a)
{
    (void)a;
    sink += tide_sleep(60000);
    return 0;
}

static __attribute__((noinline)) int gdb_event_body(void *a)
{
    (void)a;
    sink += tide_event_wait(&ev);
    return 0;
}

static int gdb_main(void *a)
{
    tide_task *s, *e;
    tide_task_opts o;
    (void)a;
    tide_event_init(&ev);
    tide_task_opts_init(&o);
    o.name = "gdb-sleeper";
    tide_create_task_ex(&s, NULL, gdb_sleeper_body, NULL, &o);
    o.name = "gdb-eventer";
    tide_create_task_ex(&e, NULL, gdb_event_body, NULL, &o);
    tide_sleep(5);
    gdb_stop_here();
    tide_cancel(s);
    tide_event_set(&ev);
    tide_await(s);
    tide_await(e);
    return 0;
}

int main(void)
{
    int rc = tide_run(gdb_main, NULL);
    puts(rc == 0 ? "ok" : "failed");
    return rc;
}
