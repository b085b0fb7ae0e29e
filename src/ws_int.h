/* WebSocket internals shared by ws_codec.c and ws.c. */
#ifndef TIDE_WS_INT_H
#define TIDE_WS_INT_H

#include <stddef.h>
#include <stdint.h>

/* base64 of n bytes into out (4*ceil(n/3) characters and a NUL); the length. */
size_t tide__ws_base64(const uint8_t *in, size_t n, char *out);
/* 1 if tok[0..tlen) is an element of the comma-separated list (exact case). */
int tide__ws_list_has_exact(const char *list, const char *tok, size_t tlen);

struct tide_http_exchange;
/* http_server.c: 1 if a response to x was begun or sent. */
int tide__http_responded(const struct tide_http_exchange *x);

#endif
