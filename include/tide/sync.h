/*
 * tide: coordinating tasks: task groups, wait / as_completed, synchronisation
 * primitives, queues and task-local values.
 * Part of the public API; include <tide.h>.
 */
#ifndef TIDE_SYNC_H
#define TIDE_SYNC_H

#include "../tide.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif

#endif /* TIDE_SYNC_H */
