/*
 * Tests of the file operations on the worker pool (src/fs.c).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tide.h"
#include "net_util.h"
#include "util.h"

#define MIB (1024 * 1024)

static char g_dir[64]; /* the temp dir of the whole run */

static void tpath(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", g_dir, name);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static int setup(void **state)
{
    (void)state;
    strcpy(g_dir, "/tmp/tide_test_fs_XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The number of pool threads (as pool.c computes it). */
static int pool_threads(void)
{
    const char *s = getenv("TIDE_THREADPOOL_SIZE");
    long n;
    char *end;
    if (!s || !*s)
        return 4;
    n = strtol(s, &end, 10);
    if (*end || n < 1)
        return 4;
    return n > 128 ? 128 : (int)n;
}

/* ------------------------------------------- keeping every worker busy */

static int g_busy_started; /* atomic */
static int g_busy_release; /* atomic */

static int busy_fn(void *arg)
{
    (void)arg;
    __atomic_fetch_add(&g_busy_started, 1, __ATOMIC_ACQ_REL);
    while (!__atomic_load_n(&g_busy_release, __ATOMIC_ACQUIRE))
        usleep(1000);
    return 0;
}

static int busy_task(void *arg)
{
    (void)arg;
    return tide_to_thread(busy_fn, NULL);
}

/* Occupies every worker; returns once they all run a busy job. */
static void pool_block(tide_task **ts, int n)
{
    __atomic_store_n(&g_busy_started, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&g_busy_release, 0, __ATOMIC_RELEASE);
    for (int i = 0; i < n; i++)
        assert_int_equal(tide_create_task(&ts[i], busy_task, NULL), 0);
    while (__atomic_load_n(&g_busy_started, __ATOMIC_ACQUIRE) < n)
        assert_int_equal(tide_sleep(1), 0);
}

static void pool_unblock(tide_task **ts, int n)
{
    __atomic_store_n(&g_busy_release, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < n; i++)
        assert_int_equal(tide_await(ts[i]), 0);
}

/* ------------------------------------------------ 64 MiB round trip */

#define BIG (64 * MIB)

typedef struct rt {
    char path[128];
    int fails;
} rt;

static int roundtrip_main(void *arg)
{
    rt *r = arg;
    uint8_t *buf = malloc(BIG), *back = malloc(4 * MIB);
    struct stat st;
    int fd;

    assert_non_null(buf);
    assert_non_null(back);
    tt_pat_fill(buf, 0, BIG);

    fd = tide_file_open(r->path, O_CREAT | O_EXCL | O_WRONLY, 0600);
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC); /* always close-on-exec */
    /* uneven chunks, then one write larger than TIDE_FILE_WRITE_CHUNK */
    size_t off = 0, k = 1;
    while (off < BIG / 2) {
        size_t n = (k * 7919 * 131) % (3 * MIB) + 1;
        if (n > BIG / 2 - off)
            n = BIG / 2 - off;
        assert_int_equal(tide_file_write(fd, buf + off, n), (ssize_t)n);
        off += n;
        k++;
    }
    assert_int_equal(tide_file_write(fd, buf + off, BIG - off), (ssize_t)(BIG - off));
    assert_int_equal(tide_file_fsync(fd), 0);
    assert_int_equal(tide_file_fstat(fd, &st), 0);
    assert_int_equal(st.st_size, BIG);
    /* reading a write-only fd */
    assert_int_equal(tide_file_read(fd, back, 16), -EBADF);
    assert_int_equal(tide_file_close(fd), 0);

    assert_int_equal(tide_file_stat(r->path, &st), 0);
    assert_int_equal(st.st_size, BIG);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);

    /* read back sequentially, 1 MiB at a time */
    fd = tide_file_open(r->path, O_RDWR, 0);
    assert_true(fd >= 0);
    off = 0;
    for (;;) {
        ssize_t n = tide_file_read(fd, back, MIB);
        assert_true(n >= 0);
        if (n == 0)
            break;
        if (tt_pat_check(back, off, (size_t)n) != -1)
            r->fails++;
        off += (size_t)n;
    }
    assert_int_equal(off, BIG);
    assert_int_equal(r->fails, 0);
    assert_int_equal(tide_file_read(fd, back, 0), 0);

    /* pwrite at scattered offsets (a different pattern), pread them back */
    static const off_t offs[] = {0, 8191, MIB + 17, 33 * MIB - 3, BIG - 4096};
    for (size_t i = 0; i < TT_ARRAY_LEN(offs); i++) {
        size_t n = 4096 + i * 1000;
        if ((size_t)offs[i] + n > BIG)
            n = BIG - (size_t)offs[i];
        tt_pat_fill(back, 1000000 + i, n);
        assert_int_equal(tide_file_pwrite(fd, back, n, offs[i]), (ssize_t)n);
    }
    for (size_t i = 0; i < TT_ARRAY_LEN(offs); i++) {
        size_t n = 4096 + i * 1000;
        if ((size_t)offs[i] + n > BIG)
            n = BIG - (size_t)offs[i];
        memset(back, 0, n);
        assert_int_equal(tide_file_pread(fd, back, n, offs[i]), (ssize_t)n);
        assert_int_equal(tt_pat_check(back, 1000000 + i, n), -1);
        /* and in the reference buffer, for the full check below */
        memcpy(buf + offs[i], back, n);
    }
    /* the file offset was not moved by pread/pwrite: still at the end */
    assert_int_equal(tide_file_read(fd, back, 16), 0);
    /* pread past the end */
    assert_int_equal(tide_file_pread(fd, back, 16, BIG + 100), 0);
    /* a big pread (4 MiB) straight into the buffer */
    for (off = 0; off < BIG; off += 4 * MIB) {
        assert_int_equal(tide_file_pread(fd, back, 4 * MIB, (off_t)off), 4 * MIB);
        if (memcmp(back, buf + off, 4 * MIB) != 0)
            r->fails++;
    }
    assert_int_equal(r->fails, 0);
    assert_int_equal(tide_file_close(fd), 0);
    assert_int_equal(tide_file_unlink(r->path), 0);
    assert_int_equal(tide_file_stat(r->path, &st), -ENOENT);
    free(buf);
    free(back);
    return 0;
}

static void test_roundtrip_64mib(void **state)
{
    (void)state;
    rt r;
    memset(&r, 0, sizeof r);
    tpath(r.path, sizeof r.path, "big");
    int before = tt_count_fds();
    assert_int_equal(tide_run(roundtrip_main, &r), 0);
    assert_int_equal(tt_count_fds(), before);
}

/* ------------------------------------------------------------ ENOENT */

static int enoent_main(void *arg)
{
    (void)arg;
    char p[128];
    struct stat st;
    tpath(p, sizeof p, "does-not-exist");
    assert_int_equal(tide_file_open(p, O_RDONLY, 0), -ENOENT);
    assert_int_equal(tide_file_stat(p, &st), -ENOENT);
    assert_int_equal(tide_file_unlink(p), -ENOENT);
    assert_int_equal(tide_file_rmdir(p), -ENOENT);
    tide_dirent *e = (tide_dirent *)1;
    size_t n = 99;
    assert_int_equal(tide_file_readdir(p, &e, &n), -ENOENT);
    assert_null(e);
    assert_int_equal(n, 0);
    char q[160];
    snprintf(q, sizeof q, "%s/sub/x", p);
    assert_int_equal(tide_file_mkdir(q, 0700), -ENOENT);
    return 0;
}

static void test_enoent(void **state)
{
    (void)state;
    assert_int_equal(tide_run(enoent_main, NULL), 0);
}

/* ------------------------------------------------- directory operations */

static int dirs_main(void *arg)
{
    (void)arg;
    char d[128], f[160], g[160], sub[160], sub2[160], x[200], lnk[160], fifo[160];
    struct stat st;
    tide_dirent *e;
    size_t n;
    int fd;

    tpath(d, sizeof d, "dirs");
    snprintf(f, sizeof f, "%s/b_file", d);
    snprintf(g, sizeof g, "%s/e_renamed", d);
    snprintf(sub, sizeof sub, "%s/a_dir", d);
    snprintf(sub2, sizeof sub2, "%s/d_dir", d);
    snprintf(lnk, sizeof lnk, "%s/c_link", d);
    snprintf(fifo, sizeof fifo, "%s/f_fifo", d);

    assert_int_equal(tide_file_mkdir(d, 0700), 0);
    assert_int_equal(tide_file_mkdir(d, 0700), -EEXIST);
    assert_int_equal(tide_file_stat(d, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    /* empty directory */
    e = (tide_dirent *)1;
    assert_int_equal(tide_file_readdir(d, &e, &n), 0);
    assert_int_equal(n, 0);
    assert_null(e);
    tide_file_readdir_free(e);

    fd = tide_file_open(f, O_CREAT | O_EXCL | O_WRONLY, 0644);
    assert_true(fd >= 0);
    assert_int_equal(tide_file_write(fd, "hello", 5), 5);
    assert_int_equal(tide_file_close(fd), 0);
    assert_int_equal(tide_file_open(f, O_CREAT | O_EXCL | O_WRONLY, 0644), -EEXIST);
    assert_int_equal(tide_file_mkdir(sub, 0755), 0);
    assert_int_equal(tide_file_mkdir(sub2, 0755), 0);
    assert_int_equal(symlink("b_file", lnk), 0);
    assert_int_equal(mkfifo(fifo, 0600), 0);

    /* mkdir/open under a regular file: -ENOTDIR */
    snprintf(x, sizeof x, "%s/x", f);
    assert_int_equal(tide_file_mkdir(x, 0700), -ENOTDIR);
    assert_int_equal(tide_file_open(x, O_RDONLY, 0), -ENOTDIR);
    assert_int_equal(tide_file_stat(x, &st), -ENOTDIR);
    /* readdir of a file */
    assert_int_equal(tide_file_readdir(f, &e, &n), -ENOTDIR);
    /* open a directory for writing */
    assert_int_equal(tide_file_open(d, O_WRONLY, 0), -EISDIR);
    /* read on a directory fd */
    fd = tide_file_open(d, O_RDONLY | O_DIRECTORY, 0);
    assert_true(fd >= 0);
    char c;
    assert_int_equal(tide_file_read(fd, &c, 1), -EISDIR);
    assert_int_equal(tide_file_fsync(fd), 0);
    assert_int_equal(tide_file_close(fd), 0);

    /* listing: sorted, with types, without . and .. */
    assert_int_equal(tide_file_readdir(d, &e, &n), 0);
    assert_int_equal(n, 5);
    assert_string_equal(e[0].name, "a_dir");
    assert_int_equal(e[0].type, DT_DIR);
    assert_string_equal(e[1].name, "b_file");
    assert_int_equal(e[1].type, DT_REG);
    assert_string_equal(e[2].name, "c_link");
    assert_int_equal(e[2].type, DT_LNK);
    assert_string_equal(e[3].name, "d_dir");
    assert_int_equal(e[3].type, DT_DIR);
    assert_string_equal(e[4].name, "f_fifo");
    assert_int_equal(e[4].type, DT_FIFO);
    tide_file_readdir_free(e);

    /* stat follows the link */
    assert_int_equal(tide_file_stat(lnk, &st), 0);
    assert_int_equal(st.st_size, 5);
    assert_true(S_ISREG(st.st_mode));

    /* rename a file; the old name is gone */
    assert_int_equal(tide_file_rename(f, g), 0);
    assert_int_equal(tide_file_stat(f, &st), -ENOENT);
    assert_int_equal(tide_file_stat(g, &st), 0);
    assert_int_equal(tide_file_rename(f, g), -ENOENT);
    /* a file over a directory, a directory over a file */
    assert_int_equal(tide_file_rename(g, sub), -EISDIR);
    assert_int_equal(tide_file_rename(sub, g), -ENOTDIR);
    /* a directory over a non-empty directory */
    snprintf(x, sizeof x, "%s/inner", sub2);
    assert_int_equal(tide_file_mkdir(x, 0700), 0);
    int rc = tide_file_rename(sub, sub2);
    assert_true(rc == -ENOTEMPTY || rc == -EEXIST);
    /* a directory into itself */
    snprintf(x, sizeof x, "%s/inside", sub);
    assert_int_equal(tide_file_rename(sub, x), -EINVAL);

    /* unlink a directory; rmdir a file / a non-empty directory */
    assert_int_equal(tide_file_unlink(sub), -EISDIR);
    assert_int_equal(tide_file_rmdir(g), -ENOTDIR);
    rc = tide_file_rmdir(sub2);
    assert_true(rc == -ENOTEMPTY || rc == -EEXIST);

    /* clean up */
    snprintf(x, sizeof x, "%s/inner", sub2);
    assert_int_equal(tide_file_rmdir(x), 0);
    assert_int_equal(tide_file_rmdir(sub2), 0);
    assert_int_equal(tide_file_rmdir(sub), 0);
    assert_int_equal(tide_file_unlink(g), 0);
    assert_int_equal(tide_file_unlink(lnk), 0);
    assert_int_equal(tide_file_unlink(fifo), 0);
    assert_int_equal(tide_file_readdir(d, &e, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(tide_file_rmdir(d), 0);
    assert_int_equal(tide_file_stat(d, &st), -ENOENT);
    return 0;
}

static void test_dirs(void **state)
{
    (void)state;
    int before = tt_count_fds();
    assert_int_equal(tide_run(dirs_main, NULL), 0);
    assert_int_equal(tt_count_fds(), before);
}

/* A directory of many entries (the array grows). */
static int bigdir_main(void *arg)
{
    (void)arg;
    char d[128], p[200];
    tide_dirent *e;
    size_t n;
    tpath(d, sizeof d, "bigdir");
    assert_int_equal(tide_file_mkdir(d, 0700), 0);
    for (int i = 0; i < 600; i++) {
        snprintf(p, sizeof p, "%s/entry-with-a-longish-name-%04d", d, i);
        int fd = tide_file_open(p, O_CREAT | O_WRONLY, 0600);
        assert_true(fd >= 0);
        assert_int_equal(tide_file_close(fd), 0);
    }
    assert_int_equal(tide_file_readdir(d, &e, &n), 0);
    assert_int_equal(n, 600);
    for (int i = 0; i < 600; i++) {
        snprintf(p, sizeof p, "entry-with-a-longish-name-%04d", i);
        assert_string_equal(e[i].name, p);
        assert_int_equal(e[i].type, DT_REG);
    }
    tide_file_readdir_free(e);
    for (int i = 0; i < 600; i++) {
        snprintf(p, sizeof p, "%s/entry-with-a-longish-name-%04d", d, i);
        assert_int_equal(tide_file_unlink(p), 0);
    }
    assert_int_equal(tide_file_rmdir(d), 0);
    return 0;
}

static void test_bigdir(void **state)
{
    (void)state;
    assert_int_equal(tide_run(bigdir_main, NULL), 0);
}

/* ------------------------------------------------------------- misuse */

static int misuse_main(void *arg)
{
    (void)arg;
    char p[128], buf[16];
    struct stat st;
    tide_dirent *e;
    size_t n;
    int pfd[2];

    tpath(p, sizeof p, "misuse");
    assert_int_equal(tide_file_open(NULL, O_RDONLY, 0), -EINVAL);
    assert_int_equal(tide_file_stat(NULL, &st), -EINVAL);
    assert_int_equal(tide_file_stat(p, NULL), -EINVAL);
    assert_int_equal(tide_file_fstat(0, NULL), -EINVAL);
    assert_int_equal(tide_file_unlink(NULL), -EINVAL);
    assert_int_equal(tide_file_rmdir(NULL), -EINVAL);
    assert_int_equal(tide_file_rename(NULL, p), -EINVAL);
    assert_int_equal(tide_file_rename(p, NULL), -EINVAL);
    assert_int_equal(tide_file_mkdir(NULL, 0700), -EINVAL);
    assert_int_equal(tide_file_readdir(NULL, &e, &n), -EINVAL);
    assert_int_equal(tide_file_readdir(p, NULL, &n), -EINVAL);
    assert_int_equal(tide_file_readdir(p, &e, NULL), -EINVAL);

    assert_int_equal(tide_file_close(-1), -EBADF);
    assert_int_equal(tide_file_read(-1, buf, 1), -EBADF);
    assert_int_equal(tide_file_write(-1, buf, 1), -EBADF);
    assert_int_equal(tide_file_pread(-1, buf, 1, 0), -EBADF);
    assert_int_equal(tide_file_pwrite(-1, buf, 1, 0), -EBADF);
    assert_int_equal(tide_file_fsync(-1), -EBADF);
    assert_int_equal(tide_file_fstat(-1, &st), -EBADF);

    int fd = tide_file_open(p, O_CREAT | O_RDWR | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(tide_file_read(fd, NULL, 1), -EINVAL);
    assert_int_equal(tide_file_write(fd, NULL, 1), -EINVAL);
    assert_int_equal(tide_file_read(fd, buf, (size_t)SSIZE_MAX + 1), -EINVAL);
    assert_int_equal(tide_file_pread(fd, buf, 1, -1), -EINVAL);
    assert_int_equal(tide_file_pwrite(fd, buf, 1, -1), -EINVAL);
    assert_int_equal(tide_file_write(fd, NULL, 0), 0);
    assert_int_equal(tide_file_read(fd, NULL, 0), 0);
    assert_int_equal(tide_file_close(fd), 0);
    /* a closed fd */
    assert_int_equal(tide_file_read(fd, buf, 1), -EBADF);
    assert_int_equal(tide_file_write(fd, "x", 1), -EBADF);
    assert_int_equal(tide_file_fsync(fd), -EBADF);
    assert_int_equal(tide_file_fstat(fd, &st), -EBADF);
    assert_int_equal(tide_file_close(fd), -EBADF);
    assert_int_equal(tide_file_unlink(p), 0);

    /* a pipe is not a file: -ESPIPE (it goes through tide_read instead) */
    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    assert_int_equal(tide_file_read(pfd[0], buf, 1), -ESPIPE);
    assert_int_equal(tide_file_write(pfd[1], "x", 1), -ESPIPE);
    assert_int_equal(tide_file_pread(pfd[0], buf, 1, 0), -ESPIPE);
    assert_int_equal(tide_write(pfd[1], "ab", 2), 2);
    assert_int_equal(tide_read(pfd[0], buf, sizeof buf), 2);
    assert_int_equal(tide_close(pfd[0]), 0);
    assert_int_equal(tide_close(pfd[1]), 0);
    return 0;
}

static void test_misuse(void **state)
{
    (void)state;
    char p[128], buf[4];
    struct stat st;
    tide_dirent *e;
    size_t n;

    tpath(p, sizeof p, "outside");
    /* outside a task: -EPERM, and nothing is done */
    assert_int_equal(tide_file_open(p, O_CREAT | O_WRONLY, 0600), -EPERM);
    assert_int_equal(stat(p, &st), -1);
    assert_int_equal(tide_file_close(0), -EPERM);
    assert_int_equal(tide_file_read(0, buf, 1), -EPERM);
    assert_int_equal(tide_file_write(1, buf, 1), -EPERM);
    assert_int_equal(tide_file_pread(0, buf, 1, 0), -EPERM);
    assert_int_equal(tide_file_pwrite(1, buf, 1, 0), -EPERM);
    assert_int_equal(tide_file_fsync(1), -EPERM);
    assert_int_equal(tide_file_stat(g_dir, &st), -EPERM);
    assert_int_equal(tide_file_fstat(0, &st), -EPERM);
    assert_int_equal(tide_file_unlink(p), -EPERM);
    assert_int_equal(tide_file_rmdir(p), -EPERM);
    assert_int_equal(tide_file_rename(p, p), -EPERM);
    assert_int_equal(tide_file_mkdir(p, 0700), -EPERM);
    assert_int_equal(tide_file_readdir(g_dir, &e, &n), -EPERM);
    tide_file_readdir_free(NULL);

    int before = tt_count_fds();
    assert_int_equal(tide_run(misuse_main, NULL), 0);
    assert_int_equal(tt_count_fds(), before);
}

/* ---------------------------------------------- cancelled while queued */

typedef struct cq {
    char path[128];
    int rc_open, rc_mkdir, rc_readdir, rc_read;
    int fd;
    tide_dirent *ents;
    size_t n;
    char buf[64];
} cq;

static int cq_open(void *arg)
{
    cq *c = arg;
    c->rc_open = tide_file_open(c->path, O_CREAT | O_EXCL | O_WRONLY, 0600);
    return c->rc_open < 0 ? c->rc_open : 0;
}

static int cq_mkdir(void *arg)
{
    cq *c = arg;
    char p[160];
    snprintf(p, sizeof p, "%s.d", c->path);
    c->rc_mkdir = tide_file_mkdir(p, 0700);
    return c->rc_mkdir;
}

static int cq_readdir(void *arg)
{
    cq *c = arg;
    c->rc_readdir = tide_file_readdir(g_dir, &c->ents, &c->n);
    return c->rc_readdir;
}

static int cq_read(void *arg)
{
    cq *c = arg;
    c->rc_read = (int)tide_file_read(c->fd, c->buf, sizeof c->buf);
    return c->rc_read;
}

static int cancel_queued_main(void *arg)
{
    cq *c = arg;
    int nb = pool_threads();
    tide_task **busy = calloc((size_t)nb, sizeof *busy);
    tide_task *t[4];

    c->fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
    assert_true(c->fd >= 0);
    pool_block(busy, nb);
    /* every worker is busy: these jobs wait in the pool's queue */
    assert_int_equal(tide_create_task(&t[0], cq_open, c), 0);
    assert_int_equal(tide_create_task(&t[1], cq_mkdir, c), 0);
    assert_int_equal(tide_create_task(&t[2], cq_readdir, c), 0);
    assert_int_equal(tide_create_task(&t[3], cq_read, c), 0);
    assert_int_equal(tide_sleep(20), 0);
    int64_t t0 = tide_now();
    for (int i = 0; i < 4; i++)
        tide_cancel(t[i]);
    for (int i = 0; i < 4; i++)
        assert_int_equal(tide_await(t[i]), -ECANCELED);
    /* they returned at once, the pool still blocked */
    assert_true(tide_now() - t0 < 1000);
    assert_int_equal(__atomic_load_n(&g_busy_release, __ATOMIC_ACQUIRE), 0);
    pool_unblock(busy, nb);
    free(busy);
    close(c->fd);
    return 0;
}

static void test_cancel_queued(void **state)
{
    (void)state;
    cq c;
    struct stat st;
    char p[160];
    memset(&c, 0, sizeof c);
    memset(c.buf, 'x', sizeof c.buf);
    tpath(c.path, sizeof c.path, "cancelled-open");
    int before = tt_count_fds();
    assert_int_equal(tide_run(cancel_queued_main, &c), 0);
    assert_int_equal(c.rc_open, -ECANCELED);
    assert_int_equal(c.rc_mkdir, -ECANCELED);
    assert_int_equal(c.rc_readdir, -ECANCELED);
    assert_int_equal(c.rc_read, -ECANCELED);
    assert_null(c.ents);
    assert_int_equal(c.n, 0);
    /* every job was taken back before it started: nothing happened */
    assert_int_equal(stat(c.path, &st), -1);
    assert_int_equal(errno, ENOENT);
    snprintf(p, sizeof p, "%s.d", c.path);
    assert_int_equal(stat(p, &st), -1);
    for (size_t i = 0; i < sizeof c.buf; i++)
        assert_int_equal(c.buf[i], 'x'); /* the read never touched the buffer */
    /* no fd leaked (tide_run returned after every job came back) */
    assert_int_equal(tt_count_fds(), before);
}

/* ----------------------- cancelled while running: a late open closes its fd */

typedef struct co {
    char fifo[128];
    int rc;
    int64_t t_returned;
} co;

static int co_open(void *arg)
{
    co *c = arg;
    /* a FIFO's open for reading blocks (on the worker) until a writer comes */
    c->rc = tide_file_open(c->fifo, O_RDONLY, 0);
    c->t_returned = tide_now();
    return c->rc < 0 ? c->rc : 0;
}

static int cancel_running_open_main(void *arg)
{
    co *c = arg;
    tide_task *t;
    assert_int_equal(tide_create_task(&t, co_open, c), 0);
    assert_int_equal(tide_sleep(50), 0); /* the worker is inside open() */
    int64_t t0 = tide_now();
    tide_cancel(t);
    assert_int_equal(tide_await(t), -ECANCELED);
    assert_true(c->t_returned - t0 < 1000);
    /* now let the open finish: a writer arrives (the waiting reader counts,
     * so a non-blocking open for writing succeeds) */
    int w = open(c->fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    assert_true(w >= 0);
    assert_int_equal(tide_sleep(50), 0);
    close(w);
    return 0;
}

static void test_cancel_running_open(void **state)
{
    (void)state;
    co c;
    memset(&c, 0, sizeof c);
    tpath(c.fifo, sizeof c.fifo, "fifo");
    assert_int_equal(mkfifo(c.fifo, 0600), 0);
    int before = tt_count_fds();
    assert_int_equal(tide_run(cancel_running_open_main, &c), 0);
    assert_int_equal(c.rc, -ECANCELED);
    /* the late fd was closed by the drop hook */
    assert_int_equal(tt_count_fds(), before);
    unlink(c.fifo);
}

/* --------------- cancelled while reading into the caller's buffer */

#define CR_SIZE (64 * MIB)

typedef struct cr {
    char path[128];
    int fd;
    uint8_t *buf; /* freed by the reader task as soon as its call returns */
    ssize_t rc, rc_next;
    long bad;
    int ran, skipped;
} cr;

static int cr_reader(void *arg)
{
    cr *c = arg;
    c->buf = malloc(CR_SIZE);
    c->rc = tide_file_pread(c->fd, c->buf, CR_SIZE, 0);
    if (c->rc > 0)
        c->bad = tt_pat_check(c->buf, 0, (size_t)c->rc);
    /* with ASan, a worker still writing here would be a use-after-free */
    free(c->buf);
    c->buf = NULL;
    /* the cancellation shows at the next call (level-triggered) */
    char b[8];
    c->rc_next = tide_file_read(c->fd, b, sizeof b);
    return 0;
}

static int cancel_read_main(void *arg)
{
    cr *c = arg;
    for (int i = 0; i < 6; i++) {
        tide_task *t;
        c->bad = -1;
        assert_int_equal(tide_create_task(&t, cr_reader, c), 0);
        assert_int_equal(tide_sleep(i), 0); /* 0..5 ms: queued, or in pread */
        if (tide_task_get_state(t) == TIDE_TASK_DONE) {
            /* a fast machine read 64 MiB and finished before the cancel */
            assert_int_equal(tide_await(t), 0);
            assert_int_equal(c->rc, CR_SIZE);
            c->ran++;
            continue;
        }
        tide_cancel(t);
        assert_int_equal(tide_await(t), 0);
        assert_true(c->rc == -ECANCELED || c->rc == CR_SIZE);
        if (c->rc == CR_SIZE) {
            c->ran++;
            assert_int_equal(c->bad, -1);
        } else {
            c->skipped++;
        }
        assert_int_equal(c->rc_next, -ECANCELED);
    }
    return 0;
}

static void test_cancel_read(void **state)
{
    (void)state;
    cr c;
    memset(&c, 0, sizeof c);
    tpath(c.path, sizeof c.path, "cancel-read");
    int fd = open(c.path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    uint8_t *b = malloc(CR_SIZE);
    tt_pat_fill(b, 0, CR_SIZE);
    assert_int_equal(write(fd, b, CR_SIZE), CR_SIZE);
    free(b);
    c.fd = fd;
    assert_int_equal(tide_run(cancel_read_main, &c), 0);
    print_message("cancelled 64 MiB preads: %d completed (waited for), %d taken back\n", c.ran,
                  c.skipped);
    close(fd);
    unlink(c.path);
}

/* ---------------- already cancelled: nothing runs, but close still closes */

static int cancelled_close_main(void *arg)
{
    char *path = arg;
    int fd = tide_file_open(path, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    tide_cancel(tide_current_task());
    assert_int_equal(tide_file_open(path, O_RDONLY, 0), -ECANCELED);
    assert_int_equal(tide_file_unlink(path), -ECANCELED);
    assert_int_equal(tide_file_write(fd, "x", 1), -ECANCELED);
    assert_int_equal(tide_file_close(fd), -ECANCELED);
    /* the fd is closed all the same */
    assert_int_equal(fcntl(fd, F_GETFD), -1);
    return 0;
}

static void test_cancelled_close(void **state)
{
    (void)state;
    char p[128];
    struct stat st;
    tpath(p, sizeof p, "cancelled-close");
    int before = tt_count_fds();
    assert_int_equal(tide_run(cancelled_close_main, p), 0);
    assert_int_equal(tt_count_fds(), before);
    assert_int_equal(stat(p, &st), 0); /* the unlink was not done */
    assert_int_equal(st.st_size, 0);   /* nor the write */
    unlink(p);
}

/* ------------------------------------------- a timeout around a queued job */

typedef struct tq {
    char path[128];
    int rc, rc_end;
} tq;

static int tq_main(void *arg)
{
    tq *q = arg;
    int nb = pool_threads();
    tide_task **busy = calloc((size_t)nb, sizeof *busy);
    tide_scope s;
    struct stat st;

    pool_block(busy, nb);
    assert_int_equal(tide_timeout_begin(&s, 20), 0);
    q->rc = tide_file_stat(q->path, &st);
    q->rc_end = tide_timeout_end(&s);
    pool_unblock(busy, nb);
    free(busy);
    return 0;
}

static void test_timeout_queued(void **state)
{
    (void)state;
    tq q;
    memset(&q, 0, sizeof q);
    strcpy(q.path, g_dir);
    assert_int_equal(tide_run(tq_main, &q), 0);
    assert_int_equal(q.rc, -ETIMEDOUT);
    assert_int_equal(q.rc_end, -ETIMEDOUT);
}

/* ------------------------ reads partly in the page cache, partly not */

typedef struct pc {
    char path[128];
    int fd;
    int ticks;   /* counted by a task that only yields */
    int reading; /* the reader is still going */
} pc;

static int pc_ticker(void *arg)
{
    pc *c = arg;
    while (c->reading) {
        if (tide_sleep(0) < 0)
            break;
        c->ticks++;
    }
    return 0;
}

static int partly_cached_main(void *arg)
{
    pc *c = arg;
    uint8_t *b = malloc(2 * MIB);
    tide_task *t;
    size_t off;

    /* the second half of the file is dropped from the page cache (the file
     * is clean after fsync): a 1 MiB read across the middle gets the first
     * part inline, the rest from a worker */
    assert_int_equal(posix_fadvise(c->fd, 8 * MIB, 0, POSIX_FADV_DONTNEED), 0);
    assert_int_equal(tide_file_pread(c->fd, b, MIB, 8 * MIB - MIB / 2), MIB);
    assert_int_equal(tt_pat_check(b, 8 * MIB - MIB / 2, MIB), -1);
    /* uncached, sequential, to the end */
    assert_int_equal(posix_fadvise(c->fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    assert_int_equal(lseek(c->fd, 0, SEEK_SET), 0);
    for (off = 0;;) {
        ssize_t n = tide_file_read(c->fd, b, MIB - 1);
        assert_true(n >= 0);
        if (n == 0)
            break;
        assert_int_equal(tt_pat_check(b, off, (size_t)n), -1);
        off += (size_t)n;
    }
    assert_int_equal(off, 16 * MIB);

    /* now all cached: a task reading in a loop still lets the others run */
    c->reading = 1;
    assert_int_equal(tide_create_task(&t, pc_ticker, c), 0);
    for (int rep = 0; rep < 4; rep++)
        for (off = 0; off < 16 * MIB; off += 64 * 1024) {
            assert_int_equal(tide_file_pread(c->fd, b, 64 * 1024, (off_t)off), 64 * 1024);
            assert_int_equal(tt_pat_check(b, off, 64 * 1024), -1);
        }
    c->reading = 0;
    assert_int_equal(tide_await(t), 0);
    free(b);
    return 0;
}

static void test_partly_cached(void **state)
{
    (void)state;
    pc c;
    memset(&c, 0, sizeof c);
    tpath(c.path, sizeof c.path, "partly-cached");
    c.fd = open(c.path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
    assert_true(c.fd >= 0);
    uint8_t *b = malloc(16 * MIB);
    tt_pat_fill(b, 0, 16 * MIB);
    assert_int_equal(write(c.fd, b, 16 * MIB), 16 * MIB);
    free(b);
    assert_int_equal(fsync(c.fd), 0);
    assert_int_equal(tide_run(partly_cached_main, &c), 0);
    /* 64 MiB read inline: the reader yielded (every 4 MiB) */
    assert_true(c.ticks >= 8);
    close(c.fd);
    unlink(c.path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_64mib),
        cmocka_unit_test(test_enoent),
        cmocka_unit_test(test_dirs),
        cmocka_unit_test(test_bigdir),
        cmocka_unit_test(test_misuse),
        cmocka_unit_test(test_cancel_queued),
        cmocka_unit_test(test_cancel_running_open),
        cmocka_unit_test(test_cancel_read),
        cmocka_unit_test(test_cancelled_close),
        cmocka_unit_test(test_timeout_queued),
        cmocka_unit_test(test_partly_cached),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
