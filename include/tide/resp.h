/*
 * tide: RESP2, the Redis serialization protocol, parsed in place.  Part of
 * the public API; include <tide.h> (or this header alone).
 *
 * Pure functions: no loop, no allocation, no global state; usable from any
 * thread and without a tide loop.  Strings a parse returns point into the
 * caller's buffer and stay valid while it does.
 *
 * Incremental use: keep the bytes received so far in one buffer and call a
 * parse function on it.  It returns the length of the first complete
 * message (consume that many bytes and call again for the next one:
 * pipelined messages come out one by one), 0 when the buffer holds only a
 * prefix of a message (read more and call again; *need, if not NULL, then
 * tells how many bytes the buffer must hold at least before the message can
 * be complete, so a large bulk string is not re-scanned on every read), or
 * a negative errno for input that can never become a valid message:
 *   -EPROTO   malformed (a bad type byte, a bad length, a missing CRLF);
 *   -EMSGSIZE beyond a limit (bulk length, element count, depth, line
 *             length) - the same input is refused whatever follows, so a
 *             peer cannot make the buffer grow past the limits.
 * Nothing else (an incomplete message can always be completed, an invalid
 * one is refused as soon as the invalid byte is there).
 */
#ifndef TIDE_RESP_H
#define TIDE_RESP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#if !defined(TIDE_API)
#if defined(__GNUC__) || defined(__clang__)
#define TIDE_API __attribute__((visibility("default")))
#else
#define TIDE_API
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Defaults of the limits (a limit of 0 in tide_resp_limits means these). */
#define TIDE_RESP_MAX_BULK_DEFAULT (512u * 1024 * 1024) /* as Redis's proto-max-bulk-len */
#define TIDE_RESP_MAX_ELEMENTS_DEFAULT (1024u * 1024)   /* per array */
#define TIDE_RESP_MAX_DEPTH_DEFAULT 8u                  /* nested arrays */
#define TIDE_RESP_MAX_DEPTH_LIMIT 64u                   /* the most max_depth may be */
#define TIDE_RESP_MAX_LINE_DEFAULT (64u * 1024)         /* a simple line or inline command */

typedef struct tide_resp_limits {
    size_t max_bulk;     /* longest bulk string; 0: the default */
    size_t max_elements; /* most elements of one array (and args of a command); 0: default */
    unsigned max_depth;  /* most nested arrays (1: flat); 0: default; at most
                            TIDE_RESP_MAX_DEPTH_LIMIT */
    size_t max_line;     /* longest line (simple string, error, integer, length
                            header, inline command); 0: default */
} tide_resp_limits;

/* Fills l with the defaults. */
TIDE_API void tide_resp_limits_init(tide_resp_limits *l);

typedef enum tide_resp_type {
    TIDE_RESP_SIMPLE = '+',  /* +OK: str/len */
    TIDE_RESP_ERROR = '-',   /* -ERR ...: str/len (without the '-') */
    TIDE_RESP_INTEGER = ':', /* :42: integer */
    TIDE_RESP_BULK = '$',    /* $3 foo: str/len (binary safe) */
    TIDE_RESP_ARRAY = '*',   /* *2 ...: n elements follow */
    TIDE_RESP_NIL = 'n',     /* $-1 (a null bulk string) */
    TIDE_RESP_NIL_ARRAY = 'N' /* *-1 (a null array) */
} tide_resp_type;

/* One value of a reply.  A reply is a tree stored in pre-order: an ARRAY
 * value with n elements is followed by its n elements (each with its own
 * elements, if it is an array). */
typedef struct tide_resp_value {
    tide_resp_type type;
    const char *str; /* SIMPLE, ERROR, BULK: into the parsed buffer */
    size_t len;
    int64_t integer; /* INTEGER */
    size_t n;        /* ARRAY: element count */
} tide_resp_value;

/* Parses one RESP2 message (any type: what a server sends) from buf[0..len)
 * into vals[0..cap) in pre-order.  Returns the message's length in bytes
 * and sets *nvals (if not NULL) to the count of values stored, 0 with
 * *need set when incomplete, or -EPROTO, -EMSGSIZE (see top; also when the
 * message has more than cap values), -EINVAL (buf or vals NULL with a
 * length, cap 0).  lim NULL: the defaults. */
TIDE_API ssize_t tide_resp_parse(const char *buf, size_t len, tide_resp_value *vals, size_t cap,
                                 size_t *nvals, const tide_resp_limits *lim, size_t *need);

/* Parses one command (what a client sends): an array of bulk strings, or an
 * inline command (space-separated words ending in LF or CRLF, as redis-cli
 * in a terminal and redis-benchmark's PING_INLINE send).  argv/argl receive
 * pointers to and lengths of at most cap arguments; *argc their count.
 * Returns the command's length, 0 when incomplete (*need: see top), or
 * -EPROTO, -EMSGSIZE (also for more than cap arguments, or more than
 * max_elements), -EINVAL.  An empty inline line returns its length with
 * *argc 0 (skip it, as Redis does). */
TIDE_API ssize_t tide_resp_parse_command(const char *buf, size_t len, const char **argv,
                                         size_t *argl, size_t cap, size_t *argc,
                                         const tide_resp_limits *lim, size_t *need);

/* Writes a command as an array of bulk strings into out[0..cap).  Returns
 * the length it needs (write nothing and call again with more room if that
 * is more than cap, as snprintf), or -EINVAL (argc 0, a NULL argument with
 * a length, out NULL with cap > 0). */
TIDE_API ssize_t tide_resp_format_command(char *out, size_t cap, size_t argc, const char *const *argv,
                                          const size_t *argl);

#ifdef __cplusplus
}
#endif

#endif /* TIDE_RESP_H */
