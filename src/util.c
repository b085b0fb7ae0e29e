/*
 * Small things every file needs: the allocator hook and error names.
 */
#include "tide_int.h"
#include "tide/tls.h"

#include <errno.h>
#include <signal.h>
#include <string.h>

static void *(*a_malloc)(size_t) = malloc;
static void *(*a_realloc)(void *, size_t) = realloc;
static void *(*a_calloc)(size_t, size_t) = calloc;
static void (*a_free)(void *) = free;

int tide_replace_allocator(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
                           void *(*calloc_fn)(size_t, size_t), void (*free_fn)(void *))
{
    if (!malloc_fn || !realloc_fn || !calloc_fn || !free_fn)
        return -EINVAL;
    a_malloc = malloc_fn;
    a_realloc = realloc_fn;
    a_calloc = calloc_fn;
    a_free = free_fn;
    return 0;
}

void *tide__malloc(size_t n)
{
    return a_malloc(n);
}

void *tide__calloc(size_t n, size_t size)
{
    return a_calloc(n, size);
}

void *tide__realloc(void *p, size_t n)
{
    return a_realloc(p, n);
}

void tide__free(void *p)
{
    if (p)
        a_free(p);
}

const char *tide__eai_strerror(int err);

/* "process killed by signal N (SIGNAME)", from static tables: the result
 * must never need freeing and be safe to keep. */
static const char *proc_signal_name(int sig)
{
#define S(n, txt) case n: return "process killed by signal " txt;
    switch (sig) {
        S(SIGHUP, "SIGHUP (hangup)")
        S(SIGINT, "SIGINT (interrupt)")
        S(SIGQUIT, "SIGQUIT (quit)")
        S(SIGILL, "SIGILL (illegal instruction)")
        S(SIGTRAP, "SIGTRAP (trace trap)")
        S(SIGABRT, "SIGABRT (aborted)")
        S(SIGBUS, "SIGBUS (bus error)")
        S(SIGFPE, "SIGFPE (arithmetic exception)")
        S(SIGKILL, "SIGKILL (killed)")
        S(SIGUSR1, "SIGUSR1")
        S(SIGSEGV, "SIGSEGV (segmentation fault)")
        S(SIGUSR2, "SIGUSR2")
        S(SIGPIPE, "SIGPIPE (broken pipe)")
        S(SIGALRM, "SIGALRM (alarm)")
        S(SIGTERM, "SIGTERM (terminated)")
        S(SIGCHLD, "SIGCHLD")
        S(SIGCONT, "SIGCONT")
        S(SIGSTOP, "SIGSTOP")
        S(SIGTSTP, "SIGTSTP")
        S(SIGTTIN, "SIGTTIN")
        S(SIGTTOU, "SIGTTOU")
        S(SIGURG, "SIGURG")
        S(SIGXCPU, "SIGXCPU (CPU time limit)")
        S(SIGXFSZ, "SIGXFSZ (file size limit)")
        S(SIGVTALRM, "SIGVTALRM")
        S(SIGPROF, "SIGPROF")
        S(SIGWINCH, "SIGWINCH")
        S(SIGSYS, "SIGSYS (bad system call)")
    }
#undef S
    return "process killed by a signal (a real-time or unknown one)";
}

const char *tide_strerror(int err)
{
    if (err == 0)
        return "success";
    if (err > 0)
        err = -err; /* be forgiving: a positive errno names the same error */
    if (err < 0 && TIDE_IS_EAI(err))
        return tide__eai_strerror(err);
    if (TIDE_IS_TLS_ERR(err)) { /* names only: no OpenSSL needed here */
        switch (err) {
        case TIDE_TLS_ERR_VERIFY:
            return "TLS: certificate verification failed";
        case TIDE_TLS_ERR_HANDSHAKE:
            return "TLS: handshake failed";
        case TIDE_TLS_ERR_PROTOCOL:
            return "TLS: protocol error";
        case TIDE_TLS_ERR_TRUNCATED:
            return "TLS: peer closed the connection without close_notify";
        case TIDE_TLS_ERR_CONFIG:
            return "TLS: unusable certificate, key or CA";
        default:
            return "TLS: unknown error";
        }
    }
    if (TIDE_PROC_IS_SIGNALED(err))
        return proc_signal_name(TIDE_PROC_TERMSIG(err));
    if (err <= -4096)
        return "unknown error (neither an errno nor a tide code)";
    return strerror(-err);
}
