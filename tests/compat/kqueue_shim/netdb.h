/*
 * <netdb.h> for tests/compat/bsd_check.sh (see sys/event.h here): glibc's,
 * but in a BSD persona EAI_NONAME has the BSD value (8; glibc's is -2), which
 * tide.h and src/net.c check against each other.
 */
#include_next <netdb.h>

#ifndef TIDE_SHIM_NETDB_H
#define TIDE_SHIM_NETDB_H
#if !defined(__linux__) && defined(EAI_NONAME)
#undef EAI_NONAME
#define EAI_NONAME 8
#endif
#endif
