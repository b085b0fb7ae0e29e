/*
 * Included first (-include) by tests/compat/bsd_check.sh in a BSD persona:
 * the C library underneath is glibc, but code that asks "is this glibc?"
 * (__GLIBC__, for glibc-only calls such as
 * posix_spawn_file_actions_addclosefrom_np) must get the BSD answer.
 * <features.h> defines the macros once (it has an include guard), so they
 * stay undefined for the whole translation unit; glibc's own headers never
 * test them.
 */
#include <features.h>
#undef __GLIBC__
#undef __GLIBC_MINOR__
#undef __GNU_LIBRARY__
