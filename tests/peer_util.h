/*
 * Helpers for the tests that drive external peer processes (openssl,
 * curl, python3, node) on loopback: header-only, everything static.
 *
 *   tt_have(prog)          1 if prog is on PATH
 *   TT_NEED(prog)          skips the current cmocka test when it is not
 *   tt_free_port()         a loopback TCP port that was free a moment ago
 *   tt_path(dir, file)     "dir/file" in one of 16 rotating buffers
 *   tt_peer_start(...)     spawns a peer and waits for its ready line
 *   tt_peer_stop(p)        SIGTERM, then SIGKILL after 3 s; frees p
 *   tt_rmtree(dir)         removes dir and everything below it
 */
#ifndef TIDE_TEST_PEER_UTIL_H
#define TIDE_TEST_PEER_UTIL_H

#include "net_util.h"

#include "tide.h"

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static inline int tt_have(const char *prog)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", prog);
    return system(cmd) == 0;
}

#define TT_NEED(prog)                                                                              \
    do {                                                                                           \
        if (!tt_have(prog)) {                                                                      \
            print_message("%s not installed: skipped\n", prog);                                    \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

static inline int tt_free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &len);
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static inline const char *tt_path(const char *dir, const char *file)
{
    static char bufs[16][160];
    static unsigned i;
    char *b = bufs[i++ % 16];
    snprintf(b, 160, "%s/%s", dir, file);
    return b;
}

enum {
    TT_PEER_STDIN = 1,  /* stdin piped too (else inherited) */
    TT_PEER_PREFIX = 2, /* the ready line starts with ready (else: contains it) */
    TT_PEER_ECHO = 4,   /* copy the lines before the ready one to stderr */
};

/* Spawns argv (in cwd, with env, when not NULL) with stdout and stderr
 * piped together; with ready, waits up to timeout_ms for a line that
 * matches it (flags), copied into line/cap when line is not NULL.
 * 0 or -1. */
static inline int tt_peer_start(tide_process **p, const char *const *argv, const char *cwd,
                                const char *const *env, unsigned flags, int timeout_ms,
                                const char *ready, char *line, size_t cap)
{
    tide_process_opts o;
    char buf[512];
    tide_scope sc;
    int rc = 0;
    if (!line) {
        line = buf;
        cap = sizeof buf;
    }
    tide_process_opts_init(&o);
    if (flags & TT_PEER_STDIN)
        o.stdin_mode = TIDE_PROC_PIPE;
    o.stdout_mode = TIDE_PROC_PIPE;
    o.stderr_mode = TIDE_PROC_STDOUT;
    o.cwd = cwd;
    o.env = env;
    if (tide_process_spawn(p, argv, &o) < 0)
        return -1;
    if (!ready)
        return 0;
    tide_timeout_begin(&sc, timeout_ms);
    for (;;) {
        ssize_t n = tide_stream_readline(tide_process_stdout(*p), line, cap - 1);
        if (n <= 0) {
            rc = -1;
            break;
        }
        line[n] = 0;
        if ((flags & TT_PEER_PREFIX) ? strncmp(line, ready, strlen(ready)) == 0
                                     : strstr(line, ready) != NULL)
            break;
        if (flags & TT_PEER_ECHO)
            fprintf(stderr, "peer: %s", line);
    }
    tide_timeout_end(&sc);
    return rc;
}

static inline void tt_peer_stop(tide_process *p)
{
    tide_scope sc;
    tide_process_kill(p, SIGTERM);
    tide_timeout_begin(&sc, 3000);
    if (tide_process_wait(p, NULL) == -ETIMEDOUT) {
        tide_process_kill(p, SIGKILL);
        tide_process_wait(p, NULL);
    }
    tide_timeout_end(&sc);
    tide_process_free(p);
}

static inline int tt_rm_one_(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static inline int tt_rmtree(const char *dir)
{
    return nftw(dir, tt_rm_one_, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
