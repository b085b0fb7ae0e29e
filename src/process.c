/*
 * Subprocesses.
 *
 * Spawning is posix_spawnp: on glibc it runs the child on a CLONE_VFORK
 * clone and reports any failure before the exec (a missing program, a bad
 * cwd) as its own error, so spawn fails instead of the child exiting 127.
 * The pipes are made close-on-exec and moved to 0/1/2 by dup2 file actions;
 * every other fd >= 3 is closed in the child (closefrom) unless
 * TIDE_PROC_KEEP_FDS.  The child gets the signal mask the program had
 * (tide__signal_child_mask takes tide's own blocking away) and SIGPIPE back
 * at its default.
 *
 * Exit: on Linux a pidfd (pidfd_open) is registered with the loop with a
 * readable callback, not a waiting task, so any number of tasks may wait:
 * when it fires the child is reaped (waitpid(pid, WNOHANG)) and every
 * waiter woken.  Without pidfds (old kernels, other systems, or built with
 * TIDE_NO_PIDFD) tide watches SIGCHLD through the signal module and, as a
 * safety net against a lost SIGCHLD (another thread took it, another loop
 * owns the watcher), each waiter also re-checks on a slow timer.
 *
 * A waiting task counts as an I/O waiter of the loop, so tide_loop_run
 * does not return while someone waits for a child.
 *
 * No zombie: tide_process_free reaps an ended child; a child still running
 * goes on the process's list of orphans, which one reaper thread (for all
 * the orphans of the process, not one per child) reaps as they end; it
 * needs neither the loop nor the handle (see "orphans" below).
 */
#include "tide_int.h"
#include "transport.h"

#include <errno.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/syscall.h>
#if defined(SYS_pidfd_open) && !defined(TIDE_NO_PIDFD)
#define HAVE_PIDFD 1
#endif
#endif

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
#define HAVE_ADDCHDIR 1
#endif
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
#define HAVE_ADDCLOSEFROM 1
#endif
#if defined(__APPLE__) || defined(__FreeBSD__)
#define HAVE_ADDCHDIR 1
#endif

extern char **environ;

/* From signal.c (internal). */
TIDE__HIDDEN int tide__signal_watch(int signo, tide_cb cb, void *arg);
TIDE__HIDDEN void tide__signal_unwatch(int signo);
TIDE__HIDDEN void tide__signal_child_mask(sigset_t *mask);

#define BACKSTOP_MIN_MS 20
#define BACKSTOP_MAX_MS 1000

/* A task in tide_process_wait, on its own stack.  The outcome is copied
 * into it when it is woken, so it never touches p again (p may be freed
 * before the woken task runs). */
typedef struct waiter {
    tide_task *task;
    struct waiter *next, **pprev;
    tide_process *p;
    int done;   /* the child was reaped: rc and status are valid */
    int rc, status;
} waiter;

struct tide_process {
    tide_loop *loop;
    pid_t pid;
    int pidfd;               /* -1 without a pidfd */
    int flags;
    uint8_t reaped;
    int status;              /* raw waitpid status, once reaped */
    int rc;                  /* exit code, TIDE_PROC_SIGNALED(sig) or -ECHILD */
    tide_stream *in, *out, *err;
    waiter *waiters;
    /* without pidfd: in the thread's list of processes being waited for */
    struct tide_process *fb_next, **fb_pprev;
    tide_timer backstop;     /* without pidfd: a slow re-check (lost SIGCHLD) */
    int backstop_ms;
};

void tide_process_opts_init(tide_process_opts *o)
{
    if (o) {
        memset(o, 0, sizeof *o);
        o->stdin_fd = o->stdout_fd = o->stderr_fd = -1;
    }
}

int tide_process_spawn_shell(tide_process **p, const char *cmd, const tide_process_opts *o)
{
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};

    if (p)
        *p = NULL;
    if (!p || !cmd)
        return -EINVAL;
    return tide_process_spawn(p, argv, o);
}

/* ---------------------------------------------------------------- reaping */

/* Unregisters fd from loop (running or not) and closes it. */
static void close_on(tide_loop *loop, int fd)
{
    tide__fd_forget(loop, fd); /* our callbacks ignore the -EBADF it gives them */
    close(fd);
}

static __thread tide_process *fb_head; /* fallback: processes with waiters */
static __thread int fb_watching;         /* our SIGCHLD watcher is installed */

static void fb_remove(tide_process *p)
{
    if (!p->fb_pprev)
        return;
    *p->fb_pprev = p->fb_next;
    if (p->fb_next)
        p->fb_next->fb_pprev = p->fb_pprev;
    p->fb_next = NULL;
    p->fb_pprev = NULL;
    if (!fb_head && fb_watching) {
        tide__signal_unwatch(SIGCHLD);
        fb_watching = 0;
    }
}

static int proc_check(tide_process *p);

static void on_sigchld(void *arg)
{
    tide_process *p, *next;
    (void)arg;
    for (p = fb_head; p; p = next) {
        next = p->fb_next;
        proc_check(p);
    }
}

/* The safety net without pidfds: re-check now and then while someone
 * waits, in case the SIGCHLD went elsewhere. */
static void backstop_fire(void *arg)
{
    tide_process *p = arg;

    p->backstop.node = NULL;
    if (proc_check(p) || !p->waiters)
        return;
    p->backstop_ms = p->backstop_ms * 2 > BACKSTOP_MAX_MS ? BACKSTOP_MAX_MS : p->backstop_ms * 2;
    (void)tide_call_later(p->loop, p->backstop_ms, backstop_fire, p, &p->backstop);
}

static void fb_add(tide_process *p)
{
    if (!p->backstop.node) {
        p->backstop_ms = BACKSTOP_MIN_MS;
        (void)tide_call_later(p->loop, p->backstop_ms, backstop_fire, p, &p->backstop);
    }
    if (p->fb_pprev)
        return;
    p->fb_next = fb_head;
    if (fb_head)
        fb_head->fb_pprev = &p->fb_next;
    fb_head = p;
    p->fb_pprev = &fb_head;
    if (!fb_watching && tide__signal_watch(SIGCHLD, on_sigchld, NULL) == 0)
        fb_watching = 1; /* else: the backstop timer alone */
}

/* Wakes every waiter of p with rc, handing each the outcome. */
static void wake_all(tide_process *p, int rc)
{
    while (p->waiters) {
        waiter *w = p->waiters;
        w->done = rc == 0 && p->reaped;
        w->rc = p->rc;
        w->status = p->status;
        /* tide__interrupt runs unlink_waiter, which takes w off the list. */
        tide__interrupt(w->task, rc);
    }
}

/* Reaps p if it ended.  Returns 1 if it is reaped (now or before). */
static int proc_check(tide_process *p)
{
    int st = 0;
    pid_t r;

    if (p->reaped)
        return 1;
    do
        r = waitpid(p->pid, &st, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == 0 || (r < 0 && errno != ECHILD))
        return 0;
    p->reaped = 1;
    if (r < 0) { /* someone else reaped it */
        p->status = 0;
        p->rc = -ECHILD;
    } else {
        p->status = st;
        if (WIFEXITED(st))
            p->rc = WEXITSTATUS(st);
        else if (WIFSIGNALED(st))
            p->rc = TIDE_PROC_SIGNALED(WTERMSIG(st));
        else
            p->rc = -ECHILD; /* cannot happen without WUNTRACED */
    }
    if (p->pidfd >= 0) {
        close_on(p->loop, p->pidfd);
        p->pidfd = -1;
    }
    fb_remove(p);
    wake_all(p, 0);
    return 1;
}

#ifdef HAVE_PIDFD
static void on_pidfd(tide__fd *f, int rc)
{
    if (rc == 0)
        proc_check(f->cb_arg);
}
#endif

/* ------------------------------------------------- orphans (freed unreaped) */

/*
 * A child still running when its handle is freed becomes an orphan: one
 * reaper thread for the whole process (started with the first orphan, gone
 * once none is left) checks every orphan with waitpid(pid, WNOHANG), first
 * every REAP_MIN_MS, backing off to every REAP_MAX_MS, and back to the
 * fastest when another orphan comes.  Never waitpid(-1): that would take
 * children that a loop or the program still waits for.  It holds no fd and
 * needs neither the loop nor the handle, and it works the same with pidfds
 * and without (the SIGCHLD path only serves processes with waiters).  If the
 * thread cannot start, the orphans wait on the list: each spawn checks them
 * and tries to start it again.
 */
#define REAP_MIN_MS 5
#define REAP_MAX_MS 200

static pthread_mutex_t orphans_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t orphans_cond;  /* CLOCK_MONOTONIC; set up by orphans_init */
static pthread_once_t orphans_once = PTHREAD_ONCE_INIT;
static pid_t *orphans;               /* orphans_lock guards all of these */
static size_t norphans, orphans_cap;
static int reaper_running;           /* a reaper thread owns the list */
static int orphans_kick;             /* an orphan was added: check soon */

/* Reaps what ended among the orphans (lock held). */
static void orphans_check(void)
{
    size_t i;

    for (i = 0; i < norphans;) {
        pid_t r = waitpid(orphans[i], NULL, WNOHANG);
        if (r != 0 && !(r < 0 && errno == EINTR)) /* reaped, or not ours any more */
            orphans[i] = orphans[--norphans];
        else
            i++;
    }
}

static void *reaper(void *arg)
{
    long delay_ms = REAP_MIN_MS;
    sigset_t all;

    (void)arg;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    pthread_mutex_lock(&orphans_lock);
    for (;;) {
        struct timespec until;

        orphans_check();
        if (norphans == 0)
            break;
        if (orphans_kick) {
            orphans_kick = 0;
            delay_ms = REAP_MIN_MS;
        }
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += delay_ms * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        (void)pthread_cond_timedwait(&orphans_cond, &orphans_lock, &until);
        if (!orphans_kick)
            delay_ms = delay_ms * 2 > REAP_MAX_MS ? REAP_MAX_MS : delay_ms * 2;
    }
    reaper_running = 0;
    tide__free(orphans);
    orphans = NULL;
    orphans_cap = 0;
    pthread_mutex_unlock(&orphans_lock);
    return NULL;
}

/* Starts the reaper if there is work and none runs (lock held). */
static void reaper_start(void)
{
    pthread_attr_t attr;
    pthread_t th;

    if (reaper_running || norphans == 0)
        return;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    if (pthread_create(&th, &attr, reaper, NULL) == 0)
        reaper_running = 1;
    pthread_attr_destroy(&attr);
}

/* fork: the child has no reaper thread and none of these orphans. */
static void orphans_prepare(void)
{
    pthread_mutex_lock(&orphans_lock);
}

static void orphans_parent(void)
{
    pthread_mutex_unlock(&orphans_lock);
}

static void orphans_child(void)
{
    norphans = 0; /* (the array is kept for the child's own) */
    reaper_running = orphans_kick = 0;
    pthread_mutex_unlock(&orphans_lock);
}

static void orphans_init(void)
{
    pthread_condattr_t ca;

    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&orphans_cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_atfork(orphans_prepare, orphans_parent, orphans_child);
}

/* On each spawn: if no reaper runs (it could not start), do its work. */
static void orphans_retry(void)
{
    pthread_once(&orphans_once, orphans_init);
    pthread_mutex_lock(&orphans_lock);
    if (!reaper_running && norphans) {
        orphans_check();
        reaper_start();
    }
    pthread_mutex_unlock(&orphans_lock);
}

static void orphan(pid_t pid)
{
    pthread_once(&orphans_once, orphans_init);
    pthread_mutex_lock(&orphans_lock);
    if (norphans == orphans_cap) {
        size_t cap = orphans_cap ? orphans_cap * 2 : 16;
        pid_t *v = tide__realloc(orphans, cap * sizeof *v);
        if (!v) {
            pthread_mutex_unlock(&orphans_lock);
            fprintf(stderr, "tide: cannot reap child %ld: out of memory\n", (long)pid);
            return;
        }
        orphans = v;
        orphans_cap = cap;
    }
    orphans[norphans++] = pid;
    orphans_kick = 1;
    if (reaper_running)
        pthread_cond_signal(&orphans_cond);
    else
        reaper_start();
    pthread_mutex_unlock(&orphans_lock);
}

/* ------------------------------------------------------------------ spawn */

static int valid_mode(int m, int fd)
{
    return m == TIDE_PROC_INHERIT || m == TIDE_PROC_PIPE || m == TIDE_PROC_DEVNULL ||
           m == TIDE_PROC_FD || (fd == 2 && m == TIDE_PROC_STDOUT);
}

/* pipe(2) with both ends close-on-exec: pipe2 where it exists (Linux, the
 * BSDs), else (macOS) fcntl right after.  Returns 0 or -1 with errno. */
static int pipe_cloexec(int fds[2])
{
#if defined(__APPLE__)
    if (pipe(fds) < 0)
        return -1;
    if (fcntl(fds[0], F_SETFD, FD_CLOEXEC) < 0 || fcntl(fds[1], F_SETFD, FD_CLOEXEC) < 0) {
        int err = errno;
        close(fds[0]);
        close(fds[1]);
        errno = err;
        return -1;
    }
    return 0;
#else
    return pipe2(fds, O_CLOEXEC);
#endif
}

/* Moves fd to a number >= 3 (close-on-exec), so the dup2 actions onto 0..2
 * cannot clobber it.  Returns the fd or -errno. */
static int above_stdio(int fd)
{
    int nfd;
    if (fd > 2)
        return fd;
    nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return nfd < 0 ? -errno : nfd;
}

/* Checks that the program can be found and run, and the cwd entered,
 * before spawning.  posix_spawnp on glibc reports these failures itself,
 * but not everywhere: with a libc or an emulator (qemu-user) that runs the
 * child as a plain fork the child would just exit 127.  The race with a
 * file changing in between is harmless: the child then exits 127. */
static int can_exec(const char *path)
{
    struct stat st;

    if (stat(path, &st) < 0)
        return -errno;
    if (S_ISDIR(st.st_mode))
        return -EACCES;
    return access(path, X_OK) < 0 ? -errno : 0;
}

static int precheck(const char *file, const char *cwd)
{
    struct stat st;
    int rc;

    if (cwd) {
        if (stat(cwd, &st) < 0)
            return -errno;
        if (!S_ISDIR(st.st_mode))
            return -ENOTDIR;
        if (access(cwd, X_OK) < 0)
            return -errno;
    }
    if (strchr(file, '/')) {
        if (cwd && file[0] != '/')
            return 0; /* relative to the new cwd: let the spawn tell */
        return can_exec(file);
    } else {
        const char *path = getenv("PATH"), *p, *end;
        char buf[4096];
        int seen_eacces = 0;

        if (!path || !*path)
            path = "/bin:/usr/bin";
        for (p = path;; p = end + 1) {
            size_t dl, fl = strlen(file);
            end = strchr(p, ':');
            if (!end)
                end = p + strlen(p);
            dl = (size_t)(end - p);
            if (dl + fl + 2 <= sizeof buf) {
                if (dl == 0)
                    buf[0] = '.', dl = 1;
                else
                    memcpy(buf, p, dl);
                buf[dl] = '/';
                memcpy(buf + dl + 1, file, fl + 1);
                rc = can_exec(buf);
                if (rc == 0)
                    return 0;
                if (rc == -EACCES)
                    seen_eacces = 1;
            }
            if (!*end)
                break;
        }
        return seen_eacces ? -EACCES : -ENOENT;
    }
}

int tide_process_spawn(tide_process **out, const char *const argv[], const tide_process_opts *o)
{
    static const tide_process_opts defaults;
    tide_loop *loop = tide__tls_loop;
    int modes[3], child[3] = {-1, -1, -1}, parent[3] = {-1, -1, -1};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    tide_process *p = NULL;
    sigset_t mask, def;
    short sflags;
    pid_t pid;
    int i, rc;

    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!argv || !argv[0])
        return -EINVAL;
    if (!o)
        o = &defaults;
    modes[0] = o->stdin_mode;
    modes[1] = o->stdout_mode;
    modes[2] = o->stderr_mode;
    for (i = 0; i < 3; i++)
        if (!valid_mode(modes[i], i))
            return -EINVAL;
    if (o->flags & ~(TIDE_PROC_NEW_PGROUP | TIDE_PROC_NEW_SESSION | TIDE_PROC_KEEP_FDS))
        return -EINVAL;
#ifndef POSIX_SPAWN_SETSID
    if (o->flags & TIDE_PROC_NEW_SESSION)
        return -ENOTSUP;
#endif
#ifndef HAVE_ADDCHDIR
    if (o->cwd)
        return -ENOTSUP;
#endif
    if (!loop)
        return -EPERM;
    rc = precheck(argv[0], o->cwd);
    if (rc < 0)
        return rc;
    orphans_retry();

    p = tide__calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->loop = loop;
    p->pidfd = -1;
    p->flags = o->flags;

    for (i = 0; i < 3; i++) {
        int fds[2];
        if (modes[i] == TIDE_PROC_FD) {
            /* A copy above 2, so the dup2s onto 0..2 cannot overwrite the
             * fd another one reads from; closed after the spawn. */
            int ufd = i == 0 ? o->stdin_fd : i == 1 ? o->stdout_fd : o->stderr_fd;
            child[i] = ufd < 0 ? -1 : fcntl(ufd, F_DUPFD_CLOEXEC, 3);
            if (child[i] < 0) {
                rc = ufd < 0 ? -EBADF : -errno;
                goto fail_fds;
            }
            continue;
        }
        if (modes[i] != TIDE_PROC_PIPE)
            continue;
        if (pipe_cloexec(fds) < 0) {
            rc = -errno;
            goto fail_fds;
        }
        /* stdin: the child reads fds[0]; stdout/stderr: it writes fds[1]. */
        child[i] = i == 0 ? fds[0] : fds[1];
        parent[i] = i == 0 ? fds[1] : fds[0];
        child[i] = above_stdio(child[i]);
        if (child[i] < 0) {
            rc = child[i];
            goto fail_fds;
        }
    }

    if ((rc = posix_spawn_file_actions_init(&fa)) != 0) {
        rc = -rc;
        goto fail_fds;
    }
    if ((rc = posix_spawnattr_init(&attr)) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        rc = -rc;
        goto fail_fds;
    }
    for (i = 0; i < 3 && rc == 0; i++) {
        switch (modes[i]) {
        case TIDE_PROC_PIPE:
        case TIDE_PROC_FD:
            rc = posix_spawn_file_actions_adddup2(&fa, child[i], i);
            break;
        case TIDE_PROC_DEVNULL:
            rc = posix_spawn_file_actions_addopen(&fa, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY,
                                                  0);
            break;
        case TIDE_PROC_STDOUT:
            rc = posix_spawn_file_actions_adddup2(&fa, 1, 2);
            break;
        default:
            break;
        }
    }
#ifdef HAVE_ADDCHDIR
    if (rc == 0 && o->cwd)
        rc = posix_spawn_file_actions_addchdir_np(&fa, o->cwd);
#endif
#ifdef HAVE_ADDCLOSEFROM
    if (rc == 0 && !(o->flags & TIDE_PROC_KEEP_FDS))
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
    sflags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    tide__signal_child_mask(&mask);
    sigemptyset(&def);
    sigaddset(&def, SIGPIPE);
    if (o->flags & TIDE_PROC_NEW_PGROUP) {
        sflags |= POSIX_SPAWN_SETPGROUP;
        if (rc == 0)
            rc = posix_spawnattr_setpgroup(&attr, 0);
    }
#ifdef POSIX_SPAWN_SETSID
    if (o->flags & TIDE_PROC_NEW_SESSION)
        sflags |= POSIX_SPAWN_SETSID;
#endif
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(&attr, &mask);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(&attr, &def);
    if (rc == 0)
        rc = posix_spawnattr_setflags(&attr, sflags);
    if (rc == 0)
        rc = posix_spawnp(&pid, argv[0], &fa, &attr, (char *const *)argv,
                          o->env ? (char *const *)o->env : environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    for (i = 0; i < 3; i++)
        if (child[i] >= 0) {
            close(child[i]);
            child[i] = -1;
        }
    if (rc != 0) {
        rc = -rc;
        goto fail_fds;
    }
    p->pid = pid;

#ifdef HAVE_PIDFD
    p->pidfd = (int)syscall(SYS_pidfd_open, (long)pid, 0L);
    if (p->pidfd >= 0) {
        int err = 0;
        tide__fd *f;
        if (p->pidfd <= 2) /* keep 0..2 free for what the program expects there */
            p->pidfd = above_stdio(p->pidfd);
        f = p->pidfd >= 0 ? tide__fd_get(loop, p->pidfd, &err) : NULL;
        if (f) {
            f->on_readable = on_pidfd;
            f->cb_arg = p;
        } else if (p->pidfd >= 0) {
            close_on(loop, p->pidfd);
            p->pidfd = -1; /* fall back to SIGCHLD */
        }
    }
#endif

    for (i = 0; i < 3; i++) {
        tide_stream **s = i == 0 ? &p->in : i == 1 ? &p->out : &p->err;
        if (parent[i] < 0)
            continue;
        rc = tide_stream_open(s, parent[i], NULL);
        if (rc < 0)
            goto fail_started;
        parent[i] = -1;
    }
    *out = p;
    return 0;

fail_started:
    /* The child runs, but the caller gets no handle: stop and reap it. */
    kill(pid, SIGKILL);
    tide_process_free(p);
    p = NULL;
fail_fds:
    for (i = 0; i < 3; i++) {
        if (child[i] >= 0)
            close(child[i]);
        if (parent[i] >= 0)
            close(parent[i]);
    }
    tide__free(p);
    return rc;
}

/* ------------------------------------------------------------- accessors */

int tide_process_pid(const tide_process *p)
{
    return p ? (int)p->pid : -EINVAL;
}

tide_stream *tide_process_stdin(const tide_process *p)
{
    return p ? p->in : NULL;
}

tide_stream *tide_process_stdout(const tide_process *p)
{
    return p ? p->out : NULL;
}

tide_stream *tide_process_stderr(const tide_process *p)
{
    return p ? p->err : NULL;
}

int tide_process_close_stdin(tide_process *p)
{
    tide_stream *s;

    if (!p)
        return -EINVAL;
    if (!p->in)
        return -EBADF;
    s = p->in;
    p->in = NULL;
    return tide_stream_close(s);
}

/* --------------------------------------------------------------- waiting */

static void unlink_waiter(void *arg)
{
    waiter *w = arg;
    if (w->pprev) {
        *w->pprev = w->next;
        if (w->next)
            w->next->pprev = w->pprev;
        w->pprev = NULL;
        w->next = NULL;
        tide__loop_io_unref(w->p->loop);
    }
}

static int result(const tide_process *p, int *status)
{
    if (status)
        *status = p->status;
    return p->rc;
}

int tide_process_wait(tide_process *p, int *status)
{
    tide_task *cur = tide__current();

    if (!p)
        return -EINVAL;
    if (!cur || cur->loop != p->loop)
        return -EPERM;
    if (proc_check(p))
        return result(p, status);
    {
        waiter w;
        int rc;

        w.task = cur;
        w.p = p;
        w.done = 0;
        w.next = p->waiters;
        if (p->waiters)
            p->waiters->pprev = &w.next;
        p->waiters = &w;
        w.pprev = &p->waiters;
        tide__loop_io_ref(p->loop);
        if (p->pidfd < 0)
            fb_add(p);
        TIDE__WAIT_ON(cur, TIDE_WAIT_PROCESS, p);
        rc = tide__suspend(cur, TIDE__NEVER, unlink_waiter, &w, 0);
        if (rc < 0 || !w.done)
            return rc < 0 ? rc : -EBADF; /* p may be gone: do not touch it */
        if (status)
            *status = w.status;
        return w.rc;
    }
}

int tide_process_poll(tide_process *p, int *status)
{
    if (!p)
        return -EINVAL;
    return proc_check(p) ? result(p, status) : -EAGAIN;
}

int tide_process_kill(tide_process *p, int sig)
{
    if (!p || sig < 0 || sig >= NSIG)
        return -EINVAL;
    /* Until we reap it the pid cannot be reused (at worst it is a zombie). */
    if (p->reaped || proc_check(p))
        return -ESRCH;
    return kill(p->pid, sig) < 0 ? -errno : 0;
}

int tide_process_kill_group(tide_process *p, int sig)
{
    if (!p || sig < 0 || sig >= NSIG ||
        !(p->flags & (TIDE_PROC_NEW_PGROUP | TIDE_PROC_NEW_SESSION)))
        return -EINVAL;
    /* The id stays the group's while any member lives (see the header). */
    return kill(-p->pid, sig) < 0 ? -errno : 0;
}

/* ------------------------------------------------------------ communicate */

typedef struct pump {
    tide_process *p;
    tide_stream *s;
    const char *in;
    size_t inlen;
    int keep;     /* keep what is read (else drop it) */
    char *buf;    /* malloc'd: handed to the caller */
    size_t len, cap;
} pump;

static int feed(void *arg)
{
    pump *f = arg;
    int rc = 0;

    if (f->inlen) {
        rc = tide_stream_flush(f->s); /* what the caller queued before */
        if (rc == 0) {
            ssize_t n = tide_write(tide_stream_fd(f->s), f->in, f->inlen);
            rc = n < 0 ? (int)n : 0;
        }
    }
    if (rc == -EPIPE || rc == -ECONNRESET)
        rc = 0; /* the child did not want it all */
    if (f->p->in == f->s) {
        int crc = tide_process_close_stdin(f->p);
        if (rc == 0 && crc != -EPIPE && crc != -ECONNRESET)
            rc = crc;
    }
    return rc;
}

static int drain(void *arg)
{
    pump *d = arg;
    char tmp[16384];

    for (;;) {
        ssize_t n;
        if (d->keep && d->cap - d->len < 16384 + 1) {
            size_t cap = d->cap ? d->cap * 2 : 65536;
            char *b = realloc(d->buf, cap);
            if (!b)
                return -ENOMEM;
            d->buf = b;
            d->cap = cap;
        }
        n = tide_stream_read(d->s, d->keep ? d->buf + d->len : tmp,
                             d->keep ? d->cap - d->len - 1 : sizeof tmp);
        if (n < 0) {
            if (d->keep)
                d->buf[d->len] = '\0'; /* what was read so far stays usable */
            return (int)n;
        }
        if (n == 0)
            break;
        if (d->keep)
            d->len += (size_t)n;
    }
    if (d->keep && !d->buf) {
        d->buf = malloc(1);
        if (!d->buf)
            return -ENOMEM;
    }
    if (d->keep)
        d->buf[d->len] = '\0';
    return 0;
}

int tide_process_communicate(tide_process *p, const void *in, size_t inlen, char **out,
                             size_t *outlen, char **err, size_t *errlen)
{
    tide_task *cur = tide__current();
    pump feeder = {0}, rd_out = {0}, rd_err = {0};
    tide_task *ts[3];
    int results[3];
    size_t n = 0, i;
    int rc = 0;

    if (out)
        *out = NULL;
    if (err)
        *err = NULL;
    if (outlen)
        *outlen = 0;
    if (errlen)
        *errlen = 0;
    if (!p || (inlen && (!in || !p->in)))
        return -EINVAL;
    if (!cur || cur->loop != p->loop)
        return -EPERM;

    feeder.p = rd_out.p = rd_err.p = p;
    feeder.s = p->in;
    feeder.in = in;
    feeder.inlen = inlen;
    rd_out.s = p->out;
    rd_out.keep = out != NULL;
    rd_err.s = p->err;
    rd_err.keep = err != NULL;

    if (feeder.s && (rc = tide_create_task(&ts[n], feed, &feeder)) == 0)
        n++;
    if (rc == 0 && rd_out.s && (rc = tide_create_task(&ts[n], drain, &rd_out)) == 0)
        n++;
    if (rc == 0 && rd_err.s && (rc = tide_create_task(&ts[n], drain, &rd_err)) == 0)
        n++;
    if (rc < 0)
        for (i = 0; i < n; i++)
            tide_cancel(ts[i]);
    if (n) {
        int grc = tide_gather(ts, n, results);
        if (rc == 0)
            rc = grc;
    }
    if (rc == 0)
        rc = tide_process_wait(p, NULL);
    if (rc == -ETIMEDOUT || rc == -ECANCELED) {
        /* Cut short: hand out what was read so far (Python's
         * TimeoutExpired.output), as a string, empty if nothing came. */
        if (out && !rd_out.buf && (rd_out.buf = malloc(1)))
            rd_out.buf[0] = '\0';
        if (err && !rd_err.buf && (rd_err.buf = malloc(1)))
            rd_err.buf[0] = '\0';
    } else if (rc < 0 && !TIDE_PROC_IS_SIGNALED(rc)) {
        free(rd_out.buf);
        free(rd_err.buf);
        return rc;
    }
    if (out) {
        *out = rd_out.buf;
        if (outlen)
            *outlen = rd_out.len;
    }
    if (err) {
        *err = rd_err.buf;
        if (errlen)
            *errlen = rd_err.len;
    }
    return rc;
}

/* ------------------------------------------------------------------- free */

void tide_process_free(tide_process *p)
{
    if (!p)
        return;
    wake_all(p, -EBADF);
    /* Queued writes are dropped so nothing waits; tasks blocked on the
     * streams wake with -EBADF. */
    if (p->in)
        tide__stream_abort(p->in);
    if (p->out)
        tide__stream_abort(p->out);
    if (p->err)
        tide__stream_abort(p->err);
    p->in = p->out = p->err = NULL;
    if (!proc_check(p))
        orphan(p->pid);
    if (p->pidfd >= 0)
        close_on(p->loop, p->pidfd);
    fb_remove(p);
    if (p->backstop.node)
        (void)tide_timer_cancel(&p->backstop);
    tide__free(p);
}
