/*
 * What the kernel charges a stackful task before it runs: the strategies
 * tried for bench/sleepers' 1M tasks, each over 200 000 stack slots in a
 * fresh MAP_NORESERVE mapping (one forked child each), timed against the
 * plain reference measured in the same run: one first-touch write to the top
 * page of each slot, no guard.
 *
 *   touch            the reference: a page fault per slot
 *   guard+touch      tide's way: guards installed 256 at a time with
 *                    process_madvise(MADV_GUARD_INSTALL), then the touch
 *   guard+populate   the same, the top pages pre-faulted 256 at a time with
 *                    process_madvise(MADV_POPULATE_WRITE) instead of touched
 *   populate         pre-faulting alone, no guard
 *
 * for slots of 256 KiB and 16 KiB stacks (plus a 16 KiB guard).  Needs Linux
 * >= 6.13 for the guard advice through process_madvise; a strategy the
 * kernel refuses is reported as such.
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define SLOTS 200000L
#define BATCH 256
#define GUARD (16 * 1024)

enum { TOUCH, GUARD_TOUCH, GUARD_POPULATE, POPULATE, NSTRAT };
static const char *const names[NSTRAT] = {"touch", "guard+touch", "guard+populate", "populate"};

/* Seconds for the strategy over SLOTS slots of slot bytes, or a negative
 * errno. */
static double run(int strat, size_t slot)
{
#if defined(SYS_process_madvise) && defined(SYS_pidfd_open)
    struct iovec iov[BATCH];
    int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    char *p;
    long i, j, n;
    int64_t t0 = bench_ns();

    if (pidfd < 0)
        return -errno;
    p = mmap(NULL, SLOTS * slot, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (p == MAP_FAILED)
        return -errno;
    (void)madvise(p, SLOTS * slot, MADV_NOHUGEPAGE);
    for (i = 0; i < SLOTS; i += BATCH) {
        n = SLOTS - i < BATCH ? SLOTS - i : BATCH;
        if (strat == GUARD_TOUCH || strat == GUARD_POPULATE) {
            for (j = 0; j < n; j++) {
                iov[j].iov_base = p + (i + j) * slot;
                iov[j].iov_len = GUARD;
            }
            if (syscall(SYS_process_madvise, pidfd, iov, n, MADV_GUARD_INSTALL, 0) < 0)
                return -errno;
        }
        if (strat == GUARD_POPULATE || strat == POPULATE) {
            for (j = 0; j < n; j++) {
                iov[j].iov_base = p + (i + j + 1) * slot - 4096;
                iov[j].iov_len = 4096;
            }
            if (syscall(SYS_process_madvise, pidfd, iov, n, MADV_POPULATE_WRITE, 0) < 0)
                return -errno;
        } else {
            for (j = 0; j < n; j++)
                p[(i + j + 1) * slot - 64] = 1;
        }
    }
    return (double)(bench_ns() - t0) / 1e9;
#else
    (void)strat;
    (void)slot;
    return -ENOSYS;
#endif
}

/* run() in a forked child, so that each starts from a fresh address space. */
static double in_child(int strat, size_t slot)
{
    int fd[2], status;
    double r = -EIO;
    pid_t pid;

    BENCH_CHECK(pipe(fd) == 0, "pipe: %s", strerror(errno));
    fflush(stdout);
    pid = fork();
    BENCH_CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        double v = run(strat, slot);
        _exit(write(fd[1], &v, sizeof v) == (ssize_t)sizeof v ? 0 : 1);
    }
    close(fd[1]);
    if (read(fd[0], &r, sizeof r) != (ssize_t)sizeof r)
        r = -EIO;
    close(fd[0]);
    waitpid(pid, &status, 0);
    return r;
}

int main(void)
{
    static const size_t stacks[2] = {256 * 1024, 16 * 1024};
    int s, k, round;

    printf("stack_faults: %ld slots per run, best of 2 interleaved rounds\n", SLOTS);
    for (k = 0; k < 2; k++) {
        size_t slot = stacks[k] + GUARD;
        double best[NSTRAT];

        for (s = 0; s < NSTRAT; s++)
            best[s] = 1e30;
        for (round = 0; round < 2; round++)
            for (s = 0; s < NSTRAT; s++) {
                double v = in_child(s, slot);
                if (v < 0 || best[s] < 0)
                    best[s] = v < 0 ? v : best[s];
                else
                    best[s] = bench_min(best[s], v);
            }
        for (s = 0; s < NSTRAT; s++) {
            if (best[s] < 0) {
                printf("stack_faults: %3zu KiB stacks  %-15s refused: %s\n", stacks[k] >> 10,
                       names[s], strerror((int)-best[s]));
                continue;
            }
            printf("stack_faults: %3zu KiB stacks  %-15s %5.2f us/slot", stacks[k] >> 10,
                   names[s], best[s] * 1e6 / SLOTS);
            if (best[TOUCH] > 0)
                printf("  x%.2f the plain touch", best[s] / best[TOUCH]);
            printf("\n");
        }
    }
    return 0;
}
