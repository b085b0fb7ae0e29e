/*
 * Shared helpers for the tide test suite (header-only, everything static).
 */
#ifndef TIDE_TEST_UTIL_H
#define TIDE_TEST_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/poll.h> /* not <poll.h>: src/poll.h is on the tests' include path */
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define TT_HAVE_VALGRIND_H 1
#endif
#endif

#if defined(__SANITIZE_ADDRESS__)
#define TT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TT_ASAN 1
#endif
#endif

#ifdef TT_ASAN
#include <sanitizer/asan_interface.h>
#endif

#if defined(__SANITIZE_THREAD__)
#define TT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TT_TSAN 1
#endif
#endif

/* 1 in a ThreadSanitizer build. */
static inline int tt_under_tsan(void)
{
#ifdef TT_TSAN
    return 1;
#else
    return 0;
#endif
}

#define TT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* 1 when running under valgrind (used only to scale down the heaviest
 * workloads; every assertion still applies). */
static inline int tt_under_valgrind(void)
{
#ifdef TT_HAVE_VALGRIND_H
    return RUNNING_ON_VALGRIND ? 1 : 0;
#else
    return 0;
#endif
}

/* Number of open file descriptors of this process (via /proc/self/fd),
 * not counting the descriptor used to read the directory. */
static inline int tt_count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        n++;
    }
    closedir(d);
    return n - 1; /* the DIR's own fd */
}

/* Number of memory mappings of this process (lines of /proc/self/maps). */
static inline int tt_count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF)
        if (c == '\n')
            n++;
    fclose(f);
    return n;
}

/* ---- capture what the process writes to fd 2 ---- */

typedef struct tt_capture {
    int saved_fd;
    int rd, wr;
} tt_capture;

static inline int tt_capture_begin(tt_capture *c)
{
    int p[2];
    c->saved_fd = c->rd = c->wr = -1;
    fflush(stderr);
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    /* enough room that writers never block on a full pipe */
    (void)fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
    c->rd = p[0];
    c->wr = p[1];
    c->saved_fd = dup(2);
    if (c->saved_fd < 0)
        return -1;
    if (dup2(c->wr, 2) < 0)
        return -1;
    return 0;
}

/* Restores stderr and returns what was written meanwhile (malloc'd,
 * NUL-terminated; the caller frees it). */
static inline char *tt_capture_end(tt_capture *c)
{
    fflush(stderr);
    dup2(c->saved_fd, 2);
    close(c->saved_fd);
    close(c->wr);
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 1024 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t n = read(c->rd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    close(c->rd);
    return buf;
}

/* Busy-waits (without suspending) for ms milliseconds. */
static inline void tt_spin_ms(int64_t ms)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &b);
        int64_t d = (int64_t)(b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
        if (d >= ms)
            return;
    }
}

/* Runs this test program again in a child process, with argv[1] = flag, and
 * captures its stderr (until the child closes it; at most 64 KiB) and its
 * wait status.  env: "NAME=VALUE" set in the child first, or NULL.  Where
 * the binary cannot exec itself (qemu-user without binfmt_misc), child()
 * runs in the fork instead, with the default handlers of SIGSEGV, SIGBUS
 * and SIGABRT; with child NULL the fork then exits with status 3.  A child
 * still alive after 30 s is killed (SIGKILL: *status says so).  Returns the
 * text (malloc'd, NUL-terminated; free it), NULL if no child could be made. */
static inline char *tt_run_self(const char *flag, int (*child)(void), const char *env,
                                int *status)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    size_t cap = 65536, len = 0;
    struct timespec ts;
    int64_t deadline;
    char *out;
    int p[2];
    pid_t pid, w;

    *status = 0;
    if (n <= 0 || pipe(p) != 0)
        return NULL;
    self[n] = '\0';
    out = malloc(cap);
    if (!out) {
        close(p[0]);
        close(p[1]);
        return NULL;
    }
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        free(out);
        close(p[0]);
        close(p[1]);
        return NULL;
    }
    if (pid == 0) { /* a fresh process: no cmocka handlers, no earlier loops */
        char *argv[3];
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        if (env)
            putenv((char *)env);
        argv[0] = self;
        argv[1] = (char *)flag;
        argv[2] = NULL;
        execv(self, argv);
        if (!child)
            _exit(3);
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        signal(SIGABRT, SIG_DFL);
        _exit(child());
    }
    close(p[1]);
    clock_gettime(CLOCK_MONOTONIC, &ts);
    deadline = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 30000;
    for (;;) {
        struct pollfd pf = {p[0], POLLIN, 0};
        int64_t left;
        ssize_t k;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        left = deadline - ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
        if (left <= 0 || len == cap - 1)
            break;
        k = poll(&pf, 1, (int)left);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        k = read(p[0], out + len, cap - 1 - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        len += (size_t)k;
    }
    out[len] = '\0';
    close(p[0]);
    for (;;) {
        w = waitpid(pid, status, WNOHANG);
        if (w != 0)
            break;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, status, 0);
            break;
        }
        usleep(10000);
    }
    return out;
}

#endif
