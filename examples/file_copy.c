/*
 * file_copy.c -- copy a file through tide's worker pool, with a progress line.
 *
 *   file_copy SRC DST     copies SRC to DST (created or truncated, SRC's mode)
 *   file_copy --self-test makes a 48 MiB file in a temp dir, copies it, checks
 *                         the copy byte for byte, removes both (a ctest smoke test)
 *
 * Regular files cannot be polled, so tide runs file system calls on a small
 * pool of worker threads (tide_file_open/read/write/...) while the calling
 * task waits; the loop keeps running other tasks meanwhile.  Here a second
 * task redraws the progress line every 100 ms while the copier works: both
 * run on one thread, and neither blocks the other.
 *
 * The copier reads 1 MiB at a time into one of two buffers and writes it out;
 * it checks the sizes at the end (fstat of both files).
 */
#include <tide.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (1024 * 1024)

typedef struct copy {
    const char *src, *dst;
    int64_t total;  /* SRC's size */
    int64_t copied; /* bytes written so far (read by the progress task) */
    int done;
    int64_t t_start;
    int tty;        /* stderr is a terminal: redraw with \r */
} copy;

static void show(const copy *c, int final)
{
    double secs = (double)(tide_now() - c->t_start) / 1000.0;
    double mib = (double)c->copied / (1024.0 * 1024.0);
    double pct = c->total ? 100.0 * (double)c->copied / (double)c->total : 100.0;

    fprintf(stderr, "%s%6.1f%%  %8.1f MiB  %7.1f MiB/s%s", c->tty ? "\r" : "", pct, mib,
            secs > 0 ? mib / secs : 0.0, final || !c->tty ? "\n" : "");
    fflush(stderr);
}

/* Redraws the progress line every 100 ms until the copy is done. */
static int progress_task(void *arg)
{
    copy *c = arg;
    int64_t last_line = 0;

    while (!c->done) {
        int rc = tide_sleep(100);
        if (rc < 0)
            return rc == -ECANCELED ? 0 : rc;
        /* not a terminal (a log, ctest): a line a second is enough */
        if (!c->done && (c->tty || tide_now() - last_line >= 1000)) {
            show(c, 0);
            last_line = tide_now();
        }
    }
    return 0;
}

static int copy_file(copy *c)
{
    struct stat st, st2;
    int in, out, rc;
    char *buf;

    in = tide_file_open(c->src, O_RDONLY, 0);
    if (in < 0) {
        fprintf(stderr, "file_copy: %s: %s\n", c->src, tide_strerror(in));
        return in;
    }
    rc = tide_file_fstat(in, &st);
    if (rc < 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "file_copy: %s: %s\n", c->src,
                rc < 0 ? tide_strerror(rc) : "not a regular file");
        tide_file_close(in);
        return rc < 0 ? rc : -EINVAL;
    }
    c->total = st.st_size;
    out = tide_file_open(c->dst, O_WRONLY | O_CREAT | O_TRUNC, st.st_mode & 07777);
    if (out < 0) {
        fprintf(stderr, "file_copy: %s: %s\n", c->dst, tide_strerror(out));
        tide_file_close(in);
        return out;
    }
    buf = malloc(CHUNK);
    if (!buf) {
        tide_file_close(in);
        tide_file_close(out);
        return -ENOMEM;
    }
    for (;;) {
        ssize_t n = tide_file_read(in, buf, CHUNK), w;
        if (n == 0)
            break;
        if (n < 0) {
            fprintf(stderr, "\nfile_copy: reading %s: %s\n", c->src, tide_strerror((int)n));
            rc = (int)n;
            break;
        }
        w = tide_file_write(out, buf, (size_t)n);
        if (w != n) {
            fprintf(stderr, "\nfile_copy: writing %s: %s\n", c->dst,
                    tide_strerror(w < 0 ? (int)w : -EIO));
            rc = w < 0 ? (int)w : -EIO;
            break;
        }
        c->copied += n;
    }
    free(buf);
    if (rc == 0)
        rc = tide_file_fsync(out);
    if (rc == 0 && (rc = tide_file_fstat(out, &st2)) == 0 && st2.st_size != c->total) {
        fprintf(stderr, "file_copy: size mismatch: %s has %" PRId64 " bytes, %s %" PRId64 "\n",
                c->src, c->total, c->dst, (int64_t)st2.st_size);
        rc = -EIO;
    }
    tide_file_close(in);
    if (tide_file_close(out) < 0 && rc == 0)
        rc = -EIO;
    return rc;
}

static int copy_main(void *arg)
{
    copy *c = arg;
    tide_task *prog;
    int rc;

    c->t_start = tide_now();
    rc = tide_create_task(&prog, progress_task, c);
    if (rc < 0)
        return rc;
    rc = copy_file(c);
    c->done = 1;
    tide_cancel(prog);
    (void)tide_await(prog);
    if (rc == 0)
        show(c, 1);
    return rc;
}

static int run_copy(const char *src, const char *dst)
{
    copy c;
    int rc;

    memset(&c, 0, sizeof c);
    c.src = src;
    c.dst = dst;
    c.tty = isatty(2);
    rc = tide_run(copy_main, &c);
    if (rc == 0)
        printf("copied %" PRId64 " bytes from %s to %s\n", c.copied, src, dst);
    return rc;
}

/* ------------------------------------------------------------- self-test */

#define TEST_SIZE (48 * 1024 * 1024 + 12345) /* not a whole number of chunks */

static uint8_t pattern(size_t i)
{
    return (uint8_t)(i * 131u + (i >> 11) * 7u + 1u);
}

static int self_test(void)
{
    char dir[] = "/tmp/tide_file_copy_XXXXXX", src[64], dst[64];
    uint8_t *buf = malloc(CHUNK);
    size_t off = 0, i;
    FILE *f;
    int rc, bad = 0;

    if (!buf || !mkdtemp(dir)) {
        perror("file_copy --self-test");
        return 1;
    }
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(dst, sizeof dst, "%s/dst", dir);
    f = fopen(src, "wb");
    while (f && off < TEST_SIZE) {
        size_t n = TEST_SIZE - off < CHUNK ? TEST_SIZE - off : CHUNK;
        for (i = 0; i < n; i++)
            buf[i] = pattern(off + i);
        if (fwrite(buf, 1, n, f) != n)
            break;
        off += n;
    }
    if (!f || fclose(f) != 0 || off != TEST_SIZE) {
        perror("file_copy --self-test: writing the source");
        bad = 1;
    }
    if (!bad && (rc = run_copy(src, dst)) != 0) {
        fprintf(stderr, "file_copy --self-test: copy failed: %s\n", tide_strerror(rc));
        bad = 1;
    }
    if (!bad) {
        f = fopen(dst, "rb");
        off = 0;
        while (f && !bad) {
            size_t n = fread(buf, 1, CHUNK, f);
            if (n == 0)
                break;
            for (i = 0; i < n; i++)
                if (buf[i] != pattern(off + i)) {
                    fprintf(stderr, "file_copy --self-test: byte %zu differs\n", off + i);
                    bad = 1;
                    break;
                }
            off += n;
        }
        if (!f || off != TEST_SIZE) {
            fprintf(stderr, "file_copy --self-test: the copy has %zu bytes, want %d\n", off,
                    TEST_SIZE);
            bad = 1;
        }
        if (f)
            fclose(f);
    }
    unlink(src);
    unlink(dst);
    rmdir(dir);
    free(buf);
    if (!bad)
        printf("file_copy --self-test: OK (%d bytes copied and verified)\n", TEST_SIZE);
    return bad;
}

int main(int argc, char **argv)
{
    int rc;

    if (argc == 2 && !strcmp(argv[1], "--self-test"))
        return self_test();
    if (argc != 3) {
        fprintf(stderr, "usage: %s SRC DST\n       %s --self-test\n", argv[0], argv[0]);
        return 2;
    }
    rc = run_copy(argv[1], argv[2]);
    return rc == 0 ? 0 : 1;
}
