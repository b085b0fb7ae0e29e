/*
 * <pthread.h> for tests/compat/bsd_check.sh: glibc's, plus the non-portable
 * stack queries of the systems tide's src/debug.c asks (macOS and NetBSD),
 * declared as those systems do.
 */
#include_next <pthread.h>

#ifndef TIDE_SHIM_PTHREAD_H
#define TIDE_SHIM_PTHREAD_H
#if defined(__APPLE__)
void *pthread_get_stackaddr_np(pthread_t thread);
size_t pthread_get_stacksize_np(pthread_t thread);
#endif
#if defined(__NetBSD__)
int pthread_attr_get_np(pthread_t thread, pthread_attr_t *attr);
#endif
#endif
