/*
 * <pthread_np.h> for tests/compat/bsd_check.sh: the FreeBSD / DragonFly
 * declaration tide uses (src/debug.c), on top of glibc's <pthread.h>.
 */
#ifndef TIDE_SHIM_PTHREAD_NP_H
#define TIDE_SHIM_PTHREAD_NP_H
#include <pthread.h>
int pthread_attr_get_np(pthread_t thread, pthread_attr_t *attr);
#endif
