/*
 * Sequential file read: tide_file_read in 1 MiB chunks from a task, against
 * plain read(2) in a loop on the same thread, same file, same buffer size,
 * measured in the same run (ratio = tide time / read time; the aim is
 * <= 1.10).  256 KiB and 4 MiB chunks are shown too.  Two configurations:
 * every read through the worker pool (TIDE_FS_NOWAIT=0, in a forked child),
 * where each call pays a fixed round trip (queue, wake a worker, post the
 * result back through the loop's eventfd), so small chunks pay more; and
 * the default, where a read that the page cache holds entirely is done
 * inline with preadv2(RWF_NOWAIT) (see src/fs.c).
 *
 * The file (1 GiB, or 256 MiB when /tmp has less than 1.5 GiB free) is
 * created once in /tmp and deleted at the end.  No cache is dropped: one
 * warm-up pass reads it first, so both sides read from the page cache (this
 * measures tide's overhead, not the disk).  Best of REPS, tide and read()
 * interleaved.  `file_read --quick` uses 64 MiB and one repetition.
 */
#include "bench.h"
#include "tide.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB (1024 * 1024)
#define REPS 3

static char g_path[64];
static size_t g_size;

typedef struct run {
    size_t chunk;
    uint8_t *buf;
    size_t total;
    int64_t ns;
    int rc;
} run;

static double run_plain(size_t chunk, uint8_t *buf)
{
    int fd = open(g_path, O_RDONLY | O_CLOEXEC);
    size_t total = 0;
    int64_t t0;
    ssize_t n;

    BENCH_CHECK(fd >= 0, "open: %s", strerror(errno));
    t0 = bench_ns();
    while ((n = read(fd, buf, chunk)) > 0)
        total += (size_t)n;
    t0 = bench_ns() - t0;
    BENCH_CHECK(n == 0, "read: %s", strerror(errno));
    BENCH_CHECK(total == g_size, "read %zu bytes of %zu", total, g_size);
    close(fd);
    return (double)t0 / 1e9;
}

static int tide_main(void *arg)
{
    run *r = arg;
    int fd = tide_file_open(g_path, O_RDONLY, 0);
    int64_t t0;
    ssize_t n;

    if (fd < 0)
        return fd;
    t0 = bench_ns();
    while ((n = tide_file_read(fd, r->buf, r->chunk)) > 0)
        r->total += (size_t)n;
    r->ns = bench_ns() - t0;
    r->rc = (int)n;
    return tide_file_close(fd);
}

static double run_tide(size_t chunk, uint8_t *buf)
{
    run r;
    int rc;

    memset(&r, 0, sizeof r);
    r.chunk = chunk;
    r.buf = buf;
    rc = tide_run(tide_main, &r);
    BENCH_CHECK(rc == 0 && r.rc == 0, "tide: %s / %s", tide_strerror(rc), tide_strerror(r.rc));
    BENCH_CHECK(r.total == g_size, "tide read %zu bytes of %zu", r.total, g_size);
    return (double)r.ns / 1e9;
}

static void make_file(void)
{
    size_t chunk = 8 * MIB, done = 0;
    uint8_t *b = malloc(chunk);
    int fd;

    BENCH_CHECK(b, "malloc");
    for (size_t i = 0; i < chunk; i++)
        b[i] = (uint8_t)(i * 131 + 7);
    strcpy(g_path, "/tmp/tide_bench_file_read_XXXXXX");
    fd = mkstemp(g_path);
    BENCH_CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
    while (done < g_size) {
        ssize_t w = write(fd, b, chunk);
        BENCH_CHECK(w > 0, "write: %s", strerror(errno));
        done += (size_t)w;
    }
    close(fd);
    free(b);
}

static double measure(const char *label, int reps, uint8_t *buf)
{
    static const size_t chunks[] = {MIB, 256 * 1024, 4 * MIB};
    double ratio1 = 0;

    printf("%s\n", label);
    (void)run_tide(MIB, buf); /* warm-up: the pool's threads */
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        double plain = 1e9, td = 1e9;
        for (int r = 0; r < reps; r++) {
            plain = bench_min(plain, run_plain(chunks[c], buf));
            td = bench_min(td, run_tide(chunks[c], buf));
        }
        printf("  chunk %5zu KiB: read() %6.1f ms (%5.2f GiB/s)   tide_file_read %6.1f ms "
               "(%5.2f GiB/s)   ratio %.3f\n",
               chunks[c] / 1024, plain * 1e3, (double)g_size / plain / (1024.0 * MIB), td * 1e3,
               (double)g_size / td / (1024.0 * MIB), td / plain);
        if (c == 0)
            ratio1 = td / plain;
    }
    fflush(stdout);
    return ratio1;
}

int main(int argc, char **argv)
{
    int quick = argc > 1 && !strcmp(argv[1], "--quick");
    int reps = quick ? 1 : REPS, status;
    struct statvfs vfs;
    uint8_t *buf;
    double ratio;
    pid_t pid;

    g_size = 1024 * (size_t)MIB;
    if (quick)
        g_size = 64 * MIB;
    else if (statvfs("/tmp", &vfs) != 0 ||
             (double)vfs.f_bavail * (double)vfs.f_frsize < 1.5 * 1024 * MIB) {
        g_size = 256 * MIB;
        printf("less than 1.5 GiB free in /tmp: using a 256 MiB file\n");
    }
    make_file();
    buf = malloc(4 * MIB);
    BENCH_CHECK(buf, "malloc");
    memset(buf, 0, 4 * MIB);
    printf("sequential read of a %zu MiB file from the page cache (a warm-up pass first, no "
           "cache dropped), best of %d; ratio = tide_file_read time / read() time\n",
           g_size / MIB, reps);
    (void)run_plain(MIB, buf); /* warm-up: the page cache, the buffer's pages */
    fflush(stdout);

    /* The pool-only path in a child (TIDE_FS_NOWAIT=0 is read once per
     * process), before this process touches tide. */
    pid = fork();
    BENCH_CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        setenv("TIDE_FS_NOWAIT", "0", 1);
        (void)measure("every read through the worker pool (TIDE_FS_NOWAIT=0):", reps, buf);
        _exit(0);
    }
    BENCH_CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && !WEXITSTATUS(status),
                "child failed");
    ratio = measure("default (cached reads <= 1 MiB done inline with preadv2(RWF_NOWAIT), the "
                    "rest on the pool):", reps, buf);
    printf("ratio tide_file_read / read() at 1 MiB chunks: %.3f (aim: <= 1.10)\n", ratio);
    unlink(g_path);
    free(buf);
    return 0;
}
