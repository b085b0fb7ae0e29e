/*
 * tide: signals.
 * Part of the public API; include <tide.h>.
 */
#ifndef TIDE_SIGNAL_H
#define TIDE_SIGNAL_H

#include "../tide.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ signals */

/* Waits for one of the signals in set and returns its number.  The signals
 * are blocked in the calling thread while it waits (Linux: signalfd).  A
 * signal that arrives while nobody waits gets its usual disposition: block
 * the signals in main (pthread_sigmask) before tide_run so none is missed.
 * Errors: -EINVAL, -EPERM, -ECANCELED, -ETIMEDOUT. */
TIDE_API int tide_signal_wait(const sigset_t *set);

#ifdef __cplusplus
}
#endif

#endif /* TIDE_SIGNAL_H */
