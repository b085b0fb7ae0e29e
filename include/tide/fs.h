/*
 * tide: files, on the worker pool.
 * Part of the public API; include <tide.h>.
 */
#ifndef TIDE_FS_H
#define TIDE_FS_H

#include "../tide.h"

#include <fcntl.h>
#include <sys/stat.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ files */

/*
 * Regular files and directories cannot be polled: every call here runs its
 * system call on the worker pool (see tide_to_thread) while the calling task
 * waits, so the loop never blocks on a disk.  Pipes, sockets and terminals
 * (stdin too, when it is one) go through the poller instead: use tide_read /
 * tide_write on them.
 *
 * One exception: a read or pread of at most 1 MiB whose bytes are all in
 * the page cache is done inline on the loop thread with preadv2(RWF_NOWAIT)
 * (Linux), which never waits for a disk: a memcpy instead of a pool round
 * trip.  A task doing many such reads yields every 4 MiB so the others run.
 * Environment TIDE_FS_NOWAIT=0 sends every read to the pool.
 *
 * Common rules:
 *  - Paths are copied: the caller's strings may go away as soon as the call
 *    returns, whatever it returns.
 *  - Every call is a cancellation point.  A task that is already cancelled
 *    (or past a scope's deadline) gets -ECANCELED (-ETIMEDOUT) and nothing
 *    is done (tide_file_close still closes its fd).
 *  - Calls that only take paths or an fd (open, close, fsync, stat, fstat,
 *    unlink, rmdir, rename, mkdir, readdir) return -ECANCELED at once when
 *    the task is cancelled while it waits.  If the operation had not started
 *    on a worker it never will; if it had, it finishes in the background and
 *    its result is disposed of: a late open closes its fd, a late readdir
 *    frees its array.  So after -ECANCELED a mkdir, unlink, rename or fsync
 *    may or may not have happened; no fd and no memory is leaked.
 *  - Calls that move bytes to or from the caller's buffer (read, write,
 *    pread, pwrite) never let a worker touch the buffer after they return.
 *    A cancellation that comes while the job is still queued returns
 *    -ECANCELED at once (the buffer was not touched); once a worker has
 *    started the system call, the task waits for it (at most one read(2),
 *    or one chunk of TIDE_FILE_WRITE_CHUNK bytes of a write) and the call
 *    returns what was transferred; the cancellation then shows at the
 *    task's next suspending call.
 *  - All return -EPERM outside a task, -EINVAL for a NULL path or output
 *    pointer (or a NULL buffer with a non-zero length), -EBADF for fd < 0,
 *    -ECANCELED, -ETIMEDOUT, -ENOMEM, -EAGAIN (no worker thread could be
 *    started), or the system call's -errno.
 */

/* Largest piece tide_file_write / tide_file_pwrite hand to one worker job:
 * the most a cancelled writer may still write before its call returns. */
#define TIDE_FILE_WRITE_CHUNK (8 * 1024 * 1024)

/* open(2), with O_CLOEXEC always added; mode is used with O_CREAT or
 * O_TMPFILE.  Returns the fd (a plain blocking fd: use it with the
 * tide_file_* calls; close it with tide_file_close or close()).  Opening a
 * FIFO blocks a worker until the other end opens it: pass O_NONBLOCK, or
 * use pipe2 and tide_read.
 * Errors: -ENOENT, -EEXIST (O_CREAT|O_EXCL), -EACCES, -EISDIR, -ENOTDIR,
 * -ELOOP, -EMFILE, -ENAMETOOLONG, ... and the common ones above. */
TIDE_API int tide_file_open(const char *path, int flags, mode_t mode);

/* close(2) on a worker (closing can block: NFS flush, last reference of a
 * big deleted file).  fd is always closed, whatever the call returns: when
 * the task is cancelled the close still happens (in the background, or on
 * the loop thread if it could not be queued); never close fd again.  Tells
 * tide to forget fd (tide_fd_forget) first.
 * Errors: -EBADF, -EIO (a write-back error reported by close), -EPERM,
 * -ECANCELED, -ETIMEDOUT. */
TIDE_API int tide_file_close(int fd);

/* read(2) of up to n bytes at the file offset: the count, 0 at end of
 * file; a read of 0 bytes returns 0 at once.
 * Errors: -EBADF, -EINVAL (NULL buffer, n > SSIZE_MAX), -EISDIR, -EIO,
 * -ESPIPE (fd is a pipe, socket or terminal: use tide_read), and the common
 * ones above. */
TIDE_API ssize_t tide_file_read(int fd, void *buf, size_t n);

/* Writes all n bytes at the file offset (like tide_write): n, or, when an
 * error or a cancellation comes after part was written, the count written
 * so far (the next call reports the error).  The bytes go in pieces of at
 * most TIDE_FILE_WRITE_CHUNK; cancellation is checked between pieces.
 * Errors: -EBADF, -EINVAL, -ENOSPC, -EDQUOT, -EFBIG, -EIO, -ESPIPE (a
 * pipe, socket or terminal: use tide_write), and the common ones above. */
TIDE_API ssize_t tide_file_write(int fd, const void *buf, size_t n);

/* pread(2) of up to n bytes at offset off (the file offset is unchanged):
 * the count, 0 at or past end of file.
 * Errors: as tide_file_read, and -EINVAL for off < 0, -ESPIPE for an fd
 * that cannot seek. */
TIDE_API ssize_t tide_file_pread(int fd, void *buf, size_t n, off_t off);

/* Writes all n bytes at offset off (the file offset is unchanged), as
 * tide_file_write does: n, or the count written before an error or a
 * cancellation.  Errors: as tide_file_write, and -EINVAL for off < 0. */
TIDE_API ssize_t tide_file_pwrite(int fd, const void *buf, size_t n, off_t off);

/* fsync(2).  Errors: -EBADF, -EIO, -EINVAL (fd does not support it),
 * -ENOSPC, and the common ones above. */
TIDE_API int tide_file_fsync(int fd);

/* stat(2) (follows symbolic links) / fstat(2).  *st is written only on
 * success.  Errors: -ENOENT, -ENOTDIR, -EACCES, -ELOOP, -ENAMETOOLONG,
 * -EBADF (fstat), and the common ones above. */
TIDE_API int tide_file_stat(const char *path, struct stat *st);
TIDE_API int tide_file_fstat(int fd, struct stat *st);

/* unlink(2): removes a name that is not a directory.
 * Errors: -ENOENT, -EISDIR, -EACCES, -EPERM, -EBUSY, -ENOTDIR, and the
 * common ones above. */
TIDE_API int tide_file_unlink(const char *path);

/* rmdir(2): removes an empty directory.
 * Errors: -ENOENT, -ENOTDIR, -ENOTEMPTY (or -EEXIST), -EBUSY, -EACCES,
 * -EINVAL (path ends in "."), and the common ones above. */
TIDE_API int tide_file_rmdir(const char *path);

/* rename(2): atomically replaces to if it exists.
 * Errors: -ENOENT, -EISDIR (to is a directory, from is not), -ENOTDIR,
 * -ENOTEMPTY / -EEXIST (to is a non-empty directory), -EXDEV (another file
 * system), -EINVAL (a directory into itself), -EACCES, and the common ones
 * above. */
TIDE_API int tide_file_rename(const char *from, const char *to);

/* mkdir(2) (mode is masked by the umask).
 * Errors: -EEXIST, -ENOENT (a parent is missing), -ENOTDIR, -EACCES,
 * -ENOSPC, and the common ones above. */
TIDE_API int tide_file_mkdir(const char *path, mode_t mode);

/* A directory entry of tide_file_readdir. */
typedef struct tide_dirent {
    const char *name;   /* NUL-terminated, inside the array's own block */
    unsigned char type; /* DT_REG, DT_DIR, DT_LNK, DT_FIFO, DT_SOCK, DT_CHR, DT_BLK
                           (the link itself, not its target); DT_UNKNOWN only if
                           the entry vanished while it was read */
} tide_dirent;

/* Lists the directory path: *entries receives a malloc'd array of *n
 * entries sorted by name (strcmp), without "." and "..", to free with
 * tide_file_readdir_free (one block: names included).  An empty directory
 * gives *entries = NULL, *n = 0.  On failure *entries = NULL, *n = 0.
 * Returns 0.  Errors: -ENOENT, -ENOTDIR, -EACCES, -EMFILE, -ENOMEM, and the
 * common ones above. */
TIDE_API int tide_file_readdir(const char *path, tide_dirent **entries, size_t *n);
/* Frees what tide_file_readdir returned.  NULL is ignored. */
TIDE_API void tide_file_readdir_free(tide_dirent *entries);

#ifdef __cplusplus
}
#endif

#endif /* TIDE_FS_H */
