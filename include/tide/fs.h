/*
 * tide: files, on the worker pool.
 * Part of the public API; include <tide.h>.
 */
#ifndef TIDE_FS_H
#define TIDE_FS_H

#include "../tide.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __cplusplus
}
#endif

#endif /* TIDE_FS_H */
