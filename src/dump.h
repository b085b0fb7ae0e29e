/*
 * Private to dump.c and debug.c: buffered report output, frame-pointer
 * walks and the symbolizer.
 */
#ifndef TIDE_DUMP_H
#define TIDE_DUMP_H

#include <stdarg.h>
#include <stdint.h>

/* A report written to an fd through a buffer; err keeps the first write error. */
typedef struct tide__outbuf {
    int fd;
    int err;
    size_t n;
    char buf[65536];
} tide__outbuf;

void tide__ob_printf(tide__outbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tide__ob_flush(tide__outbuf *b);
/* Writes one line per frame: "#i pc function+off (module+off)".  Call it
 * between tide__sym_lock and tide__sym_unlock. */
void tide__ob_frames(tide__outbuf *b, const uintptr_t *pcs, size_t n);
/* The symbol tables are loaded at the first lock; one thread at a time. */
void tide__sym_lock(void);
void tide__sym_unlock(void);

/* Walks a frame-pointer chain: pc first (if not 0), then the return address
 * of each frame, while frames stay in [lo, hi), aligned and going up.
 * Async-signal-safe.  Returns the number of pcs stored (at most max). */
size_t tide__fp_walk(uintptr_t pc, uintptr_t fp, uintptr_t lo, uintptr_t hi, uintptr_t *out,
                     size_t max);

#endif
