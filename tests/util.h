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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
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

#endif
