/*
 * tide: subprocesses (asyncio.create_subprocess_exec).
 * Part of the public API; include <tide.h>.
 */
#ifndef TIDE_PROCESS_H
#define TIDE_PROCESS_H

#include "../tide.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------- subprocesses */

typedef struct tide_process tide_process;

/* What a child's stdin, stdout or stderr is. */
#define TIDE_PROC_INHERIT 0 /* the caller's own fd 0/1/2 */
#define TIDE_PROC_PIPE 1    /* a pipe to the caller: a tide_stream (tide_process_stdin...) */
#define TIDE_PROC_DEVNULL 2 /* /dev/null */
#define TIDE_PROC_STDOUT 3  /* stderr only: wherever stdout goes (2>&1) */
#define TIDE_PROC_FD 4      /* the fd in stdin_fd / stdout_fd / stderr_fd (any fd: a file,
                               a socket, one end of a pipe(2) whose other end another
                               child has: a pipeline without pump tasks).  The caller
                               keeps its fd (the child gets a copy): close it after the
                               spawn when only the child needs it.  A pipe for a child
                               should be a plain blocking one (pipe(2)), not an fd tide
                               has made non-blocking */

/* tide_process_opts.flags */
#define TIDE_PROC_NEW_PGROUP 0x1 /* the child leads a new process group (setpgid(0, 0)),
                                    like timeout(1): see tide_process_kill_group */
#define TIDE_PROC_NEW_SESSION 0x2 /* the child starts a new session (setsid) */
#define TIDE_PROC_KEEP_FDS 0x4   /* the child inherits the program's fds that are not
                                    close-on-exec (default: closed, like Python's
                                    close_fds=True; tide's own fds are always
                                    close-on-exec) */

typedef struct tide_process_opts {
    const char *const *env; /* NULL-terminated "NAME=value" list; NULL: the caller's environ */
    const char *cwd;        /* working directory of the child; NULL: the caller's */
    int stdin_mode;         /* TIDE_PROC_INHERIT (default), _PIPE, _DEVNULL */
    int stdout_mode;        /* TIDE_PROC_INHERIT (default), _PIPE, _DEVNULL */
    int stderr_mode;        /* TIDE_PROC_INHERIT (default), _PIPE, _DEVNULL, _STDOUT */
    int flags;              /* TIDE_PROC_NEW_PGROUP | _NEW_SESSION | _KEEP_FDS */
    int stdin_fd;           /* for TIDE_PROC_FD: the child's stdin (-1 by opts_init) */
    int stdout_fd;          /* for TIDE_PROC_FD: the child's stdout */
    int stderr_fd;          /* for TIDE_PROC_FD: the child's stderr */
} tide_process_opts;

/* Everything inherited, no flags, the *_fd fields -1. */
TIDE_API void tide_process_opts_init(tide_process_opts *o);

/* A process that died of a signal: tide_process_wait returns
 * TIDE_PROC_SIGNALED(sig), a value in its own negative range (like the
 * TIDE_EAI codes) that no errno uses.  tide_strerror names it ("process
 * killed by signal SIGKILL (killed)"). */
#define TIDE_PROC_SIGNAL_BASE (-20000)
#define TIDE_PROC_SIGNALED(sig) (TIDE_PROC_SIGNAL_BASE - (sig))
#define TIDE_PROC_IS_SIGNALED(rc) ((rc) < TIDE_PROC_SIGNAL_BASE && (rc) > TIDE_PROC_SIGNAL_BASE - 1000)
#define TIDE_PROC_TERMSIG(rc) (TIDE_PROC_SIGNAL_BASE - (rc))

/*
 * Starts argv[0] with arguments argv (NULL-terminated; argv[0] without a
 * '/' is searched in the caller's PATH) and options o (NULL: everything
 * inherited).  Does not suspend, but must run on the thread of a running
 * loop (in a task or a loop callback): the pipes are streams of that loop.
 *
 * The child gets the signal mask and dispositions the program had before
 * tide touched them: signals blocked by tide_signal_wait and signal
 * handlers are unblocked, and SIGPIPE is reset to its default (tide's loop
 * ignores it; a child should not inherit that, as with Python).  One
 * exception: a signal with a tide handler (tide_signal_handler_add) starts
 * at its default action in the child even if the program ignored it before
 * (exec resets caught signals to the default, and posix_spawn cannot set
 * SIG_IGN).
 *
 * A program that cannot be started is an error of this call (-ENOENT,
 * -EACCES, -ENOEXEC...; the child never runs), not an exit status 127; so
 * is a cwd that does not exist.
 *
 * The exit is awaited through a pidfd on Linux (pidfd_open, read through
 * the poller), else through SIGCHLD (tide's own watcher, see
 * tide_signal_handler_add) with a slow poll as a safety net.  tide reaps
 * only its own children, with waitpid(pid): code that reaps any child
 * (waitpid(-1), SIGCHLD set to SIG_IGN) takes the status away and
 * tide_process_wait then returns -ECHILD.
 *
 * Errors: -EINVAL (p or argv or argv[0] NULL, a bad mode or flag), -EPERM
 * (no loop runs on this thread), -ENOMEM, -EMFILE/-ENFILE (no fd for the
 * pipes), -ENOTSUP (cwd on a system without posix_spawn chdir), or the
 * errno of the exec (-ENOENT, -EACCES, -ENOEXEC, -E2BIG...).
 */
TIDE_API int tide_process_spawn(tide_process **p, const char *const argv[],
                                const tide_process_opts *o);

/* asyncio.create_subprocess_shell: runs cmd with /bin/sh -c (the shell
 * does the parsing, so never pass untrusted text in cmd), with options o
 * as tide_process_spawn.  A command the shell cannot find is its exit
 * status 127, not an error of this call.
 * Errors: -EINVAL (p or cmd NULL, bad options), and those of
 * tide_process_spawn. */
TIDE_API int tide_process_spawn_shell(tide_process **p, const char *cmd,
                                      const tide_process_opts *o);

/* The child's pid (stays valid after it is reaped), or -EINVAL. */
TIDE_API int tide_process_pid(const tide_process *p);

/* The streams of the pipes (TIDE_PROC_PIPE), or NULL.  They belong to p:
 * never tide_stream_close them (tide_process_close_stdin and
 * tide_process_free do). */
TIDE_API tide_stream *tide_process_stdin(const tide_process *p);
TIDE_API tide_stream *tide_process_stdout(const tide_process *p);
TIDE_API tide_stream *tide_process_stderr(const tide_process *p);

/* Flushes what was written to the child's stdin (waiting, within the task's
 * cancel scopes), closes the pipe so the child sees end of file; after it
 * tide_process_stdin returns NULL.  Returns 0 or the write error (-EPIPE:
 * the child did not read it all), -ECANCELED/-ETIMEDOUT if the flush was cut
 * short (the pipe is closed in every case).
 * Errors: -EINVAL, -EBADF (no stdin pipe, or closed already). */
TIDE_API int tide_process_close_stdin(tide_process *p);

/*
 * Waits for the child to end and returns its exit code (0..255), or
 * TIDE_PROC_SIGNALED(sig) if a signal ended it.  status (may be NULL)
 * receives the raw waitpid status (WIFEXITED...).  Once the child has ended
 * every later call returns the same at once.  Several tasks may wait for
 * the same process.  Obeys cancellation and cancel scopes (the child keeps
 * running: tide_process_kill it), e.g.:
 *
 *     tide_timeout_begin(&s, 5000);
 *     rc = tide_process_wait(p, NULL);
 *     tide_timeout_end(&s);
 *     if (rc == -ETIMEDOUT) { tide_process_kill(p, SIGKILL); rc = tide_process_wait(p, NULL); }
 *
 * Errors: -EINVAL (p NULL), -EPERM (not in a task of p's loop), -ECANCELED,
 * -ETIMEDOUT, -EBADF (p was freed by another task meanwhile), -ECHILD
 * (someone else reaped the child, see tide_process_spawn).
 */
TIDE_API int tide_process_wait(tide_process *p, int *status);

/* Popen.poll(): as tide_process_wait without waiting: the exit code or
 * TIDE_PROC_SIGNALED(sig) if the child has ended (it is reaped now),
 * -EAGAIN if it still runs.  Never suspends.  Errors: -EINVAL, -ECHILD. */
TIDE_API int tide_process_poll(tide_process *p, int *status);

/* Sends sig to the child (0 checks it exists).  Never signals another
 * process: once the child is reaped it returns -ESRCH.
 * Errors: -EINVAL (p NULL, bad sig), -ESRCH, -EPERM (kill(2) refused). */
TIDE_API int tide_process_kill(tide_process *p, int sig);

/* Sends sig to the child's whole process group (spawned with
 * TIDE_PROC_NEW_PGROUP or _NEW_SESSION), grandchildren included, even
 * after the child itself ended.  The group id is safe while any member of
 * the group lives; once all are gone the kernel may give the id to a new
 * group, so do not use it long after the group emptied.
 * Errors: -EINVAL (p NULL, bad sig, no group of its own), -ESRCH (nobody is
 * left in the group), -EPERM. */
TIDE_API int tide_process_kill_group(tide_process *p, int sig);

/*
 * Process.communicate(): writes inlen bytes of in to the child's stdin and
 * closes it (a child that exits without reading it all is not an error),
 * reads its stdout and stderr to their end at the same time (separate
 * tasks, so a child that fills one pipe while we feed another cannot
 * deadlock), then waits for it.  Returns what tide_process_wait returns.
 *
 * *out / *err receive malloc'd (free() them), NUL-terminated copies of
 * everything the child wrote, with their lengths in *outlen / *errlen (may
 * be NULL).  A stream that is not a pipe gives NULL and 0; one whose out
 * pointer is NULL is read and thrown away.  in may be NULL (inlen 0): stdin
 * is just closed.  Data buffered in the streams before the call is part of
 * the result.  If the caller is cancelled or a scope times out, the reading
 * and writing tasks are cancelled and waited for, and the call returns
 * -ECANCELED / -ETIMEDOUT with *out and *err holding what was read so far
 * (as Python's TimeoutExpired.output; an empty string if nothing came;
 * free() them).  On any other error nothing is returned (*out, *err NULL).
 * In every case the child is left as it is (not killed:
 * tide_process_kill it).
 * Errors: -EINVAL (p NULL, inlen > 0 without a stdin pipe or with in
 * NULL), -EPERM, -ENOMEM, -ECANCELED, -ETIMEDOUT, a read or write error,
 * and those of tide_process_wait.
 */
TIDE_API int tide_process_communicate(tide_process *p, const void *in, size_t inlen, char **out,
                                      size_t *outlen, char **err, size_t *errlen);

/*
 * Closes the pipes (data still queued for stdin is dropped: use
 * tide_process_close_stdin to deliver it), wakes tasks waiting for p with
 * -EBADF, and frees p.  Never suspends.  It never leaves a zombie: a child
 * that still runs is reaped in the background soon after it ends (by one
 * small reaper thread for all such children of the process, which checks
 * each with waitpid(pid, WNOHANG) every 5 to 200 ms and ends once none is
 * left), whether or not the loop still exists; it is not killed.  Call it on p's loop thread while the loop
 * exists (the streams belong to it).  NULL is ignored.
 */
TIDE_API void tide_process_free(tide_process *p);

#ifdef __cplusplus
}
#endif

#endif /* TIDE_PROCESS_H */
