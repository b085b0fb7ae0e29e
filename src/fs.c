/*
 * Files on the worker pool.
 *
 * A regular file is always "ready" for epoll, yet read(2) on it can sleep on
 * the disk, so every file operation is a job for the worker pool
 * (tide__to_thread) and the calling task waits for it.  Each call copies
 * what it needs (paths, fd, offsets) into one heap block, the job, so a job
 * that outlives its task never reads the caller's memory.
 *
 * Cancellation.  tide__to_thread returns -ECANCELED at once when the task
 * is cancelled while it waits; the job still comes back later, and the pool
 * then calls our drop hook (fs_drop) on the loop thread instead of waking
 * the task.  Two kinds of job need different care:
 *
 *  1. Jobs that touch no caller memory (open, close, fsync, stat, fstat,
 *     unlink, rmdir, rename, mkdir, readdir): their results live in the job.
 *     A cancelled task returns at once; the job is "orphaned" and fs_drop
 *     disposes of the late result: a late open closes its fd, a late
 *     readdir frees its array.
 *
 *  2. Jobs that move bytes to or from the caller's buffer (read, write,
 *     pread, pwrite): once the task has returned, its buffer may be freed or
 *     reused, and a worker must never write into it (or read garbage out of
 *     it to the file).  The choice made here: no bounce buffer (it would
 *     cost a memcpy of every byte, which for page-cache reads is about the
 *     price of the read itself), but a wait that cannot be cancelled once
 *     the worker has started the system call.  After tide__to_thread
 *     returns -ECANCELED the task tries to take the job back: the job's
 *     state goes QUEUED -> SKIPPED (task) or QUEUED -> RUNNING (worker) by
 *     compare-and-swap, so exactly one side wins.  If the task wins, the
 *     worker will skip the job without touching the buffer and the task
 *     returns -ECANCELED at once.  If the worker won, the task sets itself
 *     as the job's waiter and suspends with TIDE__WAIT_NOCANCEL; fs_drop
 *     wakes it when the job comes back, and the call returns what was
 *     transferred (bytes that left the file offset are not lost); the
 *     cancellation, level-triggered, shows at the task's next suspending
 *     call.  The uncancellable wait is bounded by one read(2), or one
 *     TIDE_FILE_WRITE_CHUNK of a write: writes go in such chunks, and
 *     cancellation is checked between them.  All of this is built on
 *     tide__to_thread's drop hook and tide__suspend: pool.c is unchanged.
 *
 *     An fd that could block a worker forever (a pipe, a socket, a
 *     terminal) would make that wait endless, so read/write check the fd's
 *     type on the worker (one fstat) and refuse those with -ESPIPE: they
 *     belong to tide_read/tide_write, through the poller.
 *
 * The same "take it back if still queued" step also applies to the jobs of
 * kind 1, so a cancelled mkdir that had not started never happens.  close
 * is the exception: it is never taken back (the fd must be closed), and if
 * it cannot be queued at all (task already cancelled, no memory, no worker)
 * the fd is closed right here on the loop thread.
 *
 * One exception to "everything on the pool": a read that the page cache
 * holds entirely is done inline with preadv2(RWF_NOWAIT), which cannot wait
 * for a disk (see "the page-cache fast path" below).
 *
 * Flags of a job (dropped, orphan, waiter) are touched on the loop thread
 * only (tide__to_thread's drop runs there, or synchronously before it
 * returns); the state is the only field shared with the worker.
 */
#include "tide_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

enum {
    OP_OPEN,
    OP_CLOSE,
    OP_READ,
    OP_PREAD,
    OP_WRITE,
    OP_PWRITE,
    OP_FSYNC,
    OP_STAT,
    OP_FSTAT,
    OP_UNLINK,
    OP_RMDIR,
    OP_RENAME,
    OP_MKDIR,
    OP_READDIR
};

/* Job states, shared with the worker. */
enum { ST_QUEUED = 0, ST_RUNNING, ST_DONE, ST_SKIPPED };

typedef struct fs_job {
    int state;          /* ST_*, atomic */
    uint8_t op;
    uint8_t dropped;    /* fs_drop ran before the job was queued */
    uint8_t orphan;     /* the task left: fs_drop frees the job */
    tide_task *waiter;  /* a task waiting, uncancellably, for fs_drop */
    int fd;
    int flags;
    mode_t mode;
    off_t off;
    void *buf;          /* the caller's buffer (read/write jobs only) */
    size_t n;
    ssize_t res;        /* the result: >= 0 or -errno */
    struct stat st;
    tide_dirent *ents;  /* readdir's result */
    size_t nents;
    const char *path, *path2; /* copies, inside this block */
    char strs[];
} fs_job;

/* ------------------------------------------------------------- helpers */

static fs_job *job_new(int op, const char *path, const char *path2)
{
    size_t l1 = path ? strlen(path) + 1 : 0, l2 = path2 ? strlen(path2) + 1 : 0;
    fs_job *j = tide__malloc(sizeof *j + l1 + l2);

    if (!j)
        return NULL;
    memset(j, 0, sizeof *j);
    j->op = (uint8_t)op;
    j->fd = -1;
    if (path) {
        memcpy(j->strs, path, l1);
        j->path = j->strs;
    }
    if (path2) {
        memcpy(j->strs + l1, path2, l2);
        j->path2 = j->strs + l1;
    }
    return j;
}

static int touches_caller_memory(const fs_job *j)
{
    return j->op == OP_READ || j->op == OP_PREAD || j->op == OP_WRITE || j->op == OP_PWRITE;
}

static void close_quietly(int fd)
{
    /* Linux closes the fd even when close reports EINTR: never retry. */
    (void)close(fd);
}

/* Frees a job nobody will read, with whatever result it still holds. */
static void job_discard(fs_job *j)
{
    if (__atomic_load_n(&j->state, __ATOMIC_ACQUIRE) == ST_DONE) {
        if (j->op == OP_OPEN && j->res >= 0)
            close_quietly((int)j->res);
        tide__free(j->ents);
    }
    tide__free(j);
}

/* ------------------------------------------------------------ the worker */

/* An fd a blocking read or write may wait on forever. */
static int is_stream_fd(int fd)
{
    struct stat st;

    if (fstat(fd, &st) < 0)
        return -errno;
    if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || (S_ISCHR(st.st_mode) && isatty(fd)))
        return -ESPIPE;
    return 0;
}

/* Writes everything (a chunk of at most TIDE_FILE_WRITE_CHUNK). */
static ssize_t write_all(int fd, const char *p, size_t n, off_t off, int positional)
{
    size_t done = 0;

    while (done < n) {
        ssize_t w = positional ? pwrite(fd, p + done, n - done, off + (off_t)done)
                               : write(fd, p + done, n - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return done ? (ssize_t)done : -errno;
        }
        if (w == 0)
            return done ? (ssize_t)done : -EIO;
        done += (size_t)w;
    }
    return (ssize_t)done;
}

static int ent_cmp(const void *a, const void *b)
{
    return strcmp(((const tide_dirent *)a)->name, ((const tide_dirent *)b)->name);
}

/* Reads a directory into one block: the array, then the names. */
static ssize_t do_readdir(fs_job *j)
{
    struct {
        size_t name_off;
        unsigned char type;
    } *tmp = NULL;
    char *names = NULL;
    size_t ntmp = 0, cap = 0, nlen = 0, ncap = 0, i;
    struct dirent *e;
    tide_dirent *out;
    ssize_t rc = 0;
    DIR *d;
    int dfd;

    dfd = open(j->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    d = fdopendir(dfd);
    if (!d) {
        rc = -errno;
        close_quietly(dfd);
        return rc;
    }
    for (;;) {
        size_t len;
        unsigned char type;

        errno = 0;
        e = readdir(d);
        if (!e) {
            if (errno)
                rc = -errno;
            break;
        }
        if (e->d_name[0] == '.' &&
            (e->d_name[1] == '\0' || (e->d_name[1] == '.' && e->d_name[2] == '\0')))
            continue;
        type = e->d_type;
        if (type == DT_UNKNOWN) {
            struct stat st;
            if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0)
                type = S_ISREG(st.st_mode)    ? DT_REG
                       : S_ISDIR(st.st_mode)  ? DT_DIR
                       : S_ISLNK(st.st_mode)  ? DT_LNK
                       : S_ISFIFO(st.st_mode) ? DT_FIFO
                       : S_ISSOCK(st.st_mode) ? DT_SOCK
                       : S_ISCHR(st.st_mode)  ? DT_CHR
                       : S_ISBLK(st.st_mode)  ? DT_BLK
                                              : DT_UNKNOWN;
        }
        len = strlen(e->d_name) + 1;
        if (ntmp == cap) {
            size_t nc = cap ? cap * 2 : 64;
            void *v = tide__realloc(tmp, nc * sizeof *tmp);
            if (!v) {
                rc = -ENOMEM;
                break;
            }
            tmp = v;
            cap = nc;
        }
        if (nlen + len > ncap) {
            size_t nc = ncap ? ncap * 2 : 4096;
            char *v;
            while (nc < nlen + len)
                nc *= 2;
            v = tide__realloc(names, nc);
            if (!v) {
                rc = -ENOMEM;
                break;
            }
            names = v;
            ncap = nc;
        }
        memcpy(names + nlen, e->d_name, len);
        tmp[ntmp].name_off = nlen;
        tmp[ntmp].type = type;
        ntmp++;
        nlen += len;
    }
    closedir(d);
    if (rc == 0 && ntmp > 0) {
        out = tide__malloc(ntmp * sizeof *out + nlen);
        if (!out) {
            rc = -ENOMEM;
        } else {
            char *np = (char *)(out + ntmp);
            memcpy(np, names, nlen);
            for (i = 0; i < ntmp; i++) {
                out[i].name = np + tmp[i].name_off;
                out[i].type = tmp[i].type;
            }
            qsort(out, ntmp, sizeof *out, ent_cmp);
            j->ents = out;
            j->nents = ntmp;
        }
    }
    tide__free(tmp);
    tide__free(names);
    return rc;
}

static ssize_t do_op(fs_job *j)
{
    ssize_t r;
    int rc;

    switch (j->op) {
    case OP_OPEN:
        do
            rc = open(j->path, j->flags | O_CLOEXEC, j->mode);
        while (rc < 0 && errno == EINTR);
        return rc < 0 ? -errno : rc;
    case OP_CLOSE:
        return close(j->fd) < 0 && errno != EINTR ? -errno : 0;
    case OP_READ:
    case OP_PREAD:
        if (j->op == OP_READ && (rc = is_stream_fd(j->fd)) < 0)
            return rc;
        do
            r = j->op == OP_READ ? read(j->fd, j->buf, j->n) : pread(j->fd, j->buf, j->n, j->off);
        while (r < 0 && errno == EINTR);
        return r < 0 ? -errno : r;
    case OP_WRITE:
        if ((rc = is_stream_fd(j->fd)) < 0)
            return rc;
        return write_all(j->fd, j->buf, j->n, 0, 0);
    case OP_PWRITE:
        return write_all(j->fd, j->buf, j->n, j->off, 1);
    case OP_FSYNC:
        return fsync(j->fd) < 0 ? -errno : 0;
    case OP_STAT:
        return stat(j->path, &j->st) < 0 ? -errno : 0;
    case OP_FSTAT:
        return fstat(j->fd, &j->st) < 0 ? -errno : 0;
    case OP_UNLINK:
        return unlink(j->path) < 0 ? -errno : 0;
    case OP_RMDIR:
        return rmdir(j->path) < 0 ? -errno : 0;
    case OP_RENAME:
        return rename(j->path, j->path2) < 0 ? -errno : 0;
    case OP_MKDIR:
        return mkdir(j->path, j->mode) < 0 ? -errno : 0;
    case OP_READDIR:
        return do_readdir(j);
    }
    return -EINVAL;
}

/* Runs on a worker. */
static int fs_run(void *arg)
{
    fs_job *j = arg;
    int expected = ST_QUEUED;

    if (!__atomic_compare_exchange_n(&j->state, &expected, ST_RUNNING, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        return 0; /* taken back by its cancelled task: touch nothing */
    j->res = do_op(j);
    __atomic_store_n(&j->state, ST_DONE, __ATOMIC_RELEASE);
    return 0;
}

/* ---------------------------------------------------------- the loop side */

/* tide__to_thread's drop hook, on the loop thread: the task did not take
 * the job's result from tide__to_thread. */
static void fs_drop(void *arg)
{
    fs_job *j = arg;

    if (j->waiter)
        tide__wake(j->waiter, 0); /* an uncancellable waiter takes it */
    else if (j->orphan)
        job_discard(j);
    else
        j->dropped = 1; /* never queued: submit() is still running */
}

/*
 * Runs j on the pool and waits.  Returns 0 when the job ran: j->res holds
 * its result and the caller frees j.  Returns < 0 (-ECANCELED, -ETIMEDOUT,
 * -ENOMEM, -EAGAIN) when the caller must not use j any more: it was freed,
 * or it was left to finish (or be skipped) in the background.
 */
static int submit(fs_job *j)
{
    int rc = tide__to_thread(fs_run, j, fs_drop);
    int expected = ST_QUEUED;

    if (TIDE__LIKELY(rc >= 0))
        return 0;
    if (j->dropped) {
        if (__atomic_load_n(&j->state, __ATOMIC_ACQUIRE) == ST_DONE) {
            /* It ran and came back before this task resumed from its
             * cancellation: bytes moved are reported, other results are
             * disposed of (a late open's fd closed); a close is done. */
            if (touches_caller_memory(j))
                return 0;
            job_discard(j);
            return rc;
        }
        /* Never queued (already cancelled, no memory, no worker). */
        if (j->op == OP_CLOSE)
            close_quietly(j->fd);
        tide__free(j);
        return rc;
    }
    /* Queued, and the task was cancelled (or timed out) while it waited. */
    if (j->op == OP_CLOSE ||
        !__atomic_compare_exchange_n(&j->state, &expected, ST_SKIPPED, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        /* A worker has it (close is never taken back). */
        if (touches_caller_memory(j)) {
            j->waiter = tide__current();
            TIDE__WAIT_ON(j->waiter, TIDE_WAIT_POOL, j);
            (void)tide__suspend(j->waiter, TIDE__NEVER, NULL, NULL, TIDE__WAIT_NOCANCEL);
            return 0;
        }
    }
    j->orphan = 1; /* fs_drop frees it when it comes back */
    return rc;
}

/* Checks common to every call; 0 or -EPERM. */
static int in_task(void)
{
    return tide__current() ? 0 : -EPERM;
}

/* A job with no result but its return code. */
static int run_simple(fs_job *j)
{
    int rc;

    if (!j)
        return -ENOMEM;
    rc = submit(j);
    if (rc < 0)
        return rc;
    rc = (int)j->res;
    tide__free(j);
    return rc;
}

/* ------------------------------------------------------------------ API */

int tide_file_open(const char *path, int flags, mode_t mode)
{
    fs_job *j;
    int rc;

    if (!path)
        return -EINVAL;
    if ((rc = in_task()) < 0)
        return rc;
    j = job_new(OP_OPEN, path, NULL);
    if (!j)
        return -ENOMEM;
    j->flags = flags;
    j->mode = mode;
    return run_simple(j);
}

int tide_file_close(int fd)
{
    fs_job *j;
    int rc;

    if (fd < 0)
        return -EBADF;
    if ((rc = in_task()) < 0)
        return rc;
    (void)tide_fd_forget(fd);
    j = job_new(OP_CLOSE, NULL, NULL);
    if (!j) {
        close_quietly(fd);
        return -ENOMEM;
    }
    j->fd = fd;
    return run_simple(j);
}

/* ------------------------------------------------ the page-cache fast path */

/*
 * A read whose bytes are all in the page cache cannot wait for a disk: the
 * kernel tells us so with preadv2(RWF_NOWAIT), which fails with EAGAIN
 * instead of starting I/O.  Such a read (of a regular file or a block
 * device, at most INLINE_MAX bytes) is done right here on the loop thread:
 * it costs a memcpy from the page cache, about what a pool round trip
 * costs (two cross-thread wake-ups), and a 1 MiB read from the page cache
 * is otherwise ~20% slower through the pool.  What is not cached (EAGAIN,
 * the rest of a short read, a file system without RWF_NOWAIT) goes to the
 * pool as before.  Every INLINE_YIELD bytes read this way the task yields
 * (tide_sleep(0)), so a task reading a cached file in a loop cannot starve
 * the others.  Environment TIDE_FS_NOWAIT=0 turns the fast path off.
 */
#define INLINE_MAX ((size_t)1024 * 1024)
#define INLINE_YIELD ((size_t)4 * 1024 * 1024)

#ifdef RWF_NOWAIT /* else (not Linux, or an old libc) read_inline always says -EAGAIN */
static __thread size_t inline_bytes; /* read inline since this thread last yielded */

static int nowait_enabled(void)
{
    static int enabled = -1; /* a benign race: every thread computes the same */
    int e = __atomic_load_n(&enabled, __ATOMIC_RELAXED);

    if (e < 0) {
        const char *s = getenv("TIDE_FS_NOWAIT");
        e = !(s && s[0] == '0' && s[1] == '\0');
        __atomic_store_n(&enabled, e, __ATOMIC_RELAXED);
    }
    return e;
}
#endif

/* Tries the read without waiting for a disk.  Returns the count (0: end of
 * file), -EAGAIN if the pool must do it, or a cancellation error. */
static ssize_t read_inline(tide_task *cur, int op, int fd, void *buf, size_t n, off_t off)
{
#ifdef RWF_NOWAIT
    struct iovec iov;
    struct stat st;
    ssize_t r;
    int rc;

    if (n > INLINE_MAX || !nowait_enabled())
        return -EAGAIN;
    if (cur->scope || cur->cancel_req) {
        rc = tide__cancel_check(cur, NULL); /* every call is a cancellation point */
        if (rc < 0)
            return rc;
    }
    if (inline_bytes >= INLINE_YIELD) {
        inline_bytes = 0;
        rc = tide_sleep(0);
        if (rc < 0)
            return rc;
    }
    /* Only files: a pipe or a tty must get -ESPIPE from the pool's check. */
    if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
        return -EAGAIN;
    iov.iov_base = buf;
    iov.iov_len = n;
    r = preadv2(fd, &iov, 1, op == OP_READ ? -1 : off, RWF_NOWAIT);
    if (r < 0)
        return -EAGAIN; /* EAGAIN (not cached), EOPNOTSUPP, or an error the pool reports */
    inline_bytes += (size_t)r;
    return r;
#else
    (void)cur, (void)op, (void)fd, (void)buf, (void)n, (void)off;
    return -EAGAIN;
#endif
}

static ssize_t rw_one(int op, int fd, void *buf, size_t n, off_t off)
{
    fs_job *j = job_new(op, NULL, NULL);
    ssize_t r;
    int rc;

    if (!j)
        return -ENOMEM;
    j->fd = fd;
    j->buf = buf;
    j->n = n;
    j->off = off;
    rc = submit(j);
    if (rc < 0)
        return rc;
    r = j->res;
    tide__free(j);
    return r;
}

static int rw_check(int fd, const void *buf, size_t n, off_t off)
{
    if (fd < 0)
        return -EBADF;
    if ((!buf && n) || n > SSIZE_MAX || off < 0)
        return -EINVAL;
    return in_task();
}

/* read / pread: the cached part inline, the rest on the pool. */
static ssize_t read_common(int op, int fd, void *buf, size_t n, off_t off)
{
    ssize_t k, r;

    if (n == 0)
        return 0;
    k = read_inline(tide__current(), op, fd, buf, n, off);
    if (k == -EAGAIN)
        return rw_one(op, fd, buf, n, off);
    if (k <= 0 || (size_t)k == n)
        return k; /* all of it, end of file, or cancelled */
    /* A short read: the rest is not cached (or the file ends there). */
    r = rw_one(op, fd, (char *)buf + k, n - (size_t)k, off + k);
    return r > 0 ? k + r : k; /* an error shows at the next call */
}

ssize_t tide_file_read(int fd, void *buf, size_t n)
{
    int rc = rw_check(fd, buf, n, 0);

    if (rc < 0)
        return rc;
    return read_common(OP_READ, fd, buf, n, 0);
}

ssize_t tide_file_pread(int fd, void *buf, size_t n, off_t off)
{
    int rc = rw_check(fd, buf, n, off);

    if (rc < 0)
        return rc;
    return read_common(OP_PREAD, fd, buf, n, off);
}

static ssize_t write_chunks(int op, int fd, const void *buf, size_t n, off_t off)
{
    size_t done = 0;

    while (done < n) {
        size_t k = n - done < TIDE_FILE_WRITE_CHUNK ? n - done : TIDE_FILE_WRITE_CHUNK;
        ssize_t w = rw_one(op, fd, (char *)buf + done, k, off + (off_t)done);

        if (w < 0)
            return done ? (ssize_t)done : w;
        done += (size_t)w;
        if ((size_t)w < k)
            break; /* an error after a part: the next call reports it */
    }
    return (ssize_t)done;
}

ssize_t tide_file_write(int fd, const void *buf, size_t n)
{
    int rc = rw_check(fd, buf, n, 0);

    if (rc < 0)
        return rc;
    return write_chunks(OP_WRITE, fd, buf, n, 0);
}

ssize_t tide_file_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    int rc = rw_check(fd, buf, n, off);

    if (rc < 0)
        return rc;
    if (n > (size_t)(INT64_MAX - off))
        return -EINVAL;
    return write_chunks(OP_PWRITE, fd, buf, n, off);
}

int tide_file_fsync(int fd)
{
    fs_job *j;
    int rc;

    if (fd < 0)
        return -EBADF;
    if ((rc = in_task()) < 0)
        return rc;
    j = job_new(OP_FSYNC, NULL, NULL);
    if (j)
        j->fd = fd;
    return run_simple(j);
}

static int stat_common(fs_job *j, struct stat *st)
{
    int rc;

    if (!j)
        return -ENOMEM;
    rc = submit(j);
    if (rc < 0)
        return rc;
    rc = (int)j->res;
    if (rc == 0)
        *st = j->st;
    tide__free(j);
    return rc;
}

int tide_file_stat(const char *path, struct stat *st)
{
    int rc;

    if (!path || !st)
        return -EINVAL;
    if ((rc = in_task()) < 0)
        return rc;
    return stat_common(job_new(OP_STAT, path, NULL), st);
}

int tide_file_fstat(int fd, struct stat *st)
{
    fs_job *j;
    int rc;

    if (fd < 0)
        return -EBADF;
    if (!st)
        return -EINVAL;
    if ((rc = in_task()) < 0)
        return rc;
    j = job_new(OP_FSTAT, NULL, NULL);
    if (j)
        j->fd = fd;
    return stat_common(j, st);
}

static int path_op(int op, const char *path, const char *path2, mode_t mode)
{
    fs_job *j;
    int rc;

    if (!path || (op == OP_RENAME && !path2))
        return -EINVAL;
    if ((rc = in_task()) < 0)
        return rc;
    j = job_new(op, path, path2);
    if (j)
        j->mode = mode;
    return run_simple(j);
}

int tide_file_unlink(const char *path)
{
    return path_op(OP_UNLINK, path, NULL, 0);
}

int tide_file_rmdir(const char *path)
{
    return path_op(OP_RMDIR, path, NULL, 0);
}

int tide_file_rename(const char *from, const char *to)
{
    return path_op(OP_RENAME, from, to, 0);
}

int tide_file_mkdir(const char *path, mode_t mode)
{
    return path_op(OP_MKDIR, path, NULL, mode);
}

int tide_file_readdir(const char *path, tide_dirent **entries, size_t *n)
{
    fs_job *j;
    int rc;

    if (entries)
        *entries = NULL;
    if (n)
        *n = 0;
    if (!path || !entries || !n)
        return -EINVAL;
    if ((rc = in_task()) < 0)
        return rc;
    j = job_new(OP_READDIR, path, NULL);
    if (!j)
        return -ENOMEM;
    rc = submit(j);
    if (rc < 0)
        return rc;
    rc = (int)j->res;
    if (rc == 0) {
        *entries = j->ents;
        *n = j->nents;
    } else {
        tide__free(j->ents);
    }
    tide__free(j);
    return rc;
}

void tide_file_readdir_free(tide_dirent *entries)
{
    tide__free(entries);
}
