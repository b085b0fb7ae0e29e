/*
 * <sys/uio.h> for tests/compat/bsd_check.sh (see sys/event.h here): glibc's,
 * without the Linux-only preadv2/pwritev2 flags in a BSD persona, so that
 * code testing for RWF_NOWAIT takes its portable path there.
 */
#include_next <sys/uio.h>

#ifndef TIDE_SHIM_SYS_UIO_H
#define TIDE_SHIM_SYS_UIO_H
#if !defined(__linux__)
#undef RWF_HIPRI
#undef RWF_DSYNC
#undef RWF_SYNC
#undef RWF_NOWAIT
#undef RWF_APPEND
#undef RWF_NOAPPEND
#endif
#endif
