/*
 * getnameinfo(3) on the worker pool (asyncio's loop.getnameinfo).  The job
 * owns copies of the address and the output buffers, so a cancelled task
 * leaves nothing the worker still writes into.
 */
#define _GNU_SOURCE
#include "tide_int.h"

#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>

typedef struct gni_job {
    struct sockaddr_storage sa;
    socklen_t salen;
    int flags;
    int rc, sys_errno;
    char host[NI_MAXHOST];
    char serv[NI_MAXSERV];
    int want_host, want_serv;
} gni_job;

static int gni_run(void *arg)
{
    gni_job *j = arg;

    j->rc = getnameinfo((const struct sockaddr *)&j->sa, j->salen,
                        j->want_host ? j->host : NULL, j->want_host ? sizeof j->host : 0,
                        j->want_serv ? j->serv : NULL, j->want_serv ? sizeof j->serv : 0,
                        j->flags);
    j->sys_errno = j->rc == EAI_SYSTEM ? errno : 0;
    return 0;
}

static void gni_free(void *arg)
{
    tide__free(arg);
}

static int copy_out(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);

    if (n >= cap)
        return -ENOSPC;
    memcpy(dst, src, n + 1);
    return 0;
}

int tide_getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host, size_t hostlen,
                     char *serv, size_t servlen, int flags)
{
    gni_job *j;
    int rc;

    if (!sa || salen == 0 || salen > sizeof(struct sockaddr_storage) || (!host && !serv) ||
        (host && hostlen == 0) || (serv && servlen == 0))
        return -EINVAL;
    if (!tide__current())
        return -EPERM;
    j = tide__calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    memcpy(&j->sa, sa, salen);
    j->salen = salen;
    j->flags = flags;
    j->want_host = host != NULL;
    j->want_serv = serv != NULL;
    rc = tide__to_thread(gni_run, j, gni_free);
    if (rc < 0)
        return rc; /* j is freed by gni_free, now or when it comes back */
    if (j->rc != 0) {
        if (j->rc == EAI_SYSTEM)
            rc = j->sys_errno ? -j->sys_errno : -EIO;
        else if (j->rc == EAI_MEMORY)
            rc = -ENOMEM;
        else if (j->rc == EAI_OVERFLOW)
            rc = -ENOSPC;
        else
            rc = TIDE_EAI_BASE - (j->rc < 0 ? -j->rc : j->rc);
        tide__free(j);
        return rc;
    }
    rc = 0;
    if (host)
        rc = copy_out(host, hostlen, j->host);
    if (rc == 0 && serv)
        rc = copy_out(serv, servlen, j->serv);
    tide__free(j);
    return rc;
}
