/*
 * tide: subprocesses.
 * Part of the public API; include <tide.h>.
 */
#ifndef TIDE_PROCESS_H
#define TIDE_PROCESS_H

#include "../tide.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif

#endif /* TIDE_PROCESS_H */
