/*
 * Helpers for the WebSocket tests' echo servers (header-only, everything
 * static).
 */
#ifndef TIDE_TEST_WS_UTIL_H
#define TIDE_TEST_WS_UTIL_H

#include "tide.h"

/* Reads and parses the upgrade request on s and answers it with
 * tide_ws_accept (o may be NULL).  0 and *ws, or -1. */
static inline int tt_ws_accept_stream(tide_stream *s, const tide_ws_opts *o, tide_ws **ws)
{
    char head[8192];
    tide_http_header h[64];
    tide_http_request req;
    ssize_t n = tide_stream_readuntil(s, "\r\n\r\n", 4, head, sizeof head);
    if (n <= 0)
        return -1;
    tide_http_request_init(&req, h, 64);
    if (tide_http_parse_request(head, (size_t)n, &req) != n)
        return -1;
    return tide_ws_accept(s, &req, o, ws) < 0 ? -1 : 0;
}

/* Sends every message back until the peer closes or a send fails, then
 * closes ws (code 1000). */
static inline void tt_ws_echo(tide_ws *ws)
{
    tide_ws_msg m;
    while (tide_ws_recv(ws, &m) == 0)
        if (tide_ws_send(ws, m.opcode, m.data, m.len) < 0)
            break;
    tide_ws_close(ws, 1000, NULL);
}

#endif
