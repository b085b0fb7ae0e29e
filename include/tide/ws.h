/*
 * tide: WebSocket (RFC 6455), server and client.  Part of the public API;
 * include <tide.h>.
 *
 * Two layers:
 *  - a pure codec (frame heads, masking, UTF-8 validation, close payloads,
 *    the handshake's checks): no loop, no allocation, usable from any thread;
 *  - connections over a tide_stream: tide_ws_upgrade upgrades a request in
 *    a handler of tide_http_serve, tide_ws_accept one whose head the caller
 *    read from a stream, tide_ws_connect opens ws:// and wss:// URLs.  tide_ws_recv and tide_ws_send are blocking-style calls in a task;
 *    one task may read while others send (sends are serialised by a lock, and
 *    the automatic pongs and close answers slip in between frames, never into
 *    one).
 *
 * No extension is offered or accepted (permessage-deflate is not
 * implemented: a client that offers it gets a plain connection, as RFC 6455
 * allows; a server that answers with an extension is refused).
 *
 * Errors of a connection, in the negative errno convention:
 *   -EPROTO     the peer broke the protocol (close code 1002 sent)
 *   -EILSEQ     a text message or close reason was not UTF-8 (1007 sent)
 *   -EMSGSIZE   a message exceeded max_message (1009 sent)
 *   -ECONNRESET the connection ended without a close frame (code 1006)
 *   -EPIPE      the connection is closed (a close frame was received, or
 *               sent by tide_ws_close / after an error)
 *   -ETIMEDOUT  a keep-alive ping got no answer in time (1011 sent), or a
 *               scope's deadline; -ECANCELED; the stream's errors.
 * Once a connection failed, every later recv/send returns the same error.
 */
#ifndef TIDE_WS_H
#define TIDE_WS_H

#include "../tide.h"

#ifdef __cplusplus
extern "C" {
#endif

/* From <tide/http.h> (named by tag: this header may be read before it). */
struct tide_http_request;
struct tide_http_response;
struct tide_http_exchange;

/* Opcodes (RFC 6455 section 5.2). */
#define TIDE_WS_OP_CONT 0x0
#define TIDE_WS_OP_TEXT 0x1
#define TIDE_WS_OP_BINARY 0x2
#define TIDE_WS_OP_CLOSE 0x8
#define TIDE_WS_OP_PING 0x9
#define TIDE_WS_OP_PONG 0xA

/* Close codes (RFC 6455 section 7.4.1). */
#define TIDE_WS_CLOSE_NORMAL 1000
#define TIDE_WS_CLOSE_GOING_AWAY 1001
#define TIDE_WS_CLOSE_PROTOCOL 1002
#define TIDE_WS_CLOSE_UNSUPPORTED 1003
#define TIDE_WS_CLOSE_NO_STATUS 1005 /* never sent: the close frame had no code */
#define TIDE_WS_CLOSE_ABNORMAL 1006  /* never sent: no close frame at all */
#define TIDE_WS_CLOSE_INVALID_DATA 1007
#define TIDE_WS_CLOSE_POLICY 1008
#define TIDE_WS_CLOSE_TOO_BIG 1009
#define TIDE_WS_CLOSE_EXTENSION 1010
#define TIDE_WS_CLOSE_INTERNAL 1011

/* The longest frame head: 2 + 8 (length) + 4 (mask key). */
#define TIDE_WS_MAX_HEADER 14
/* The longest control frame payload. */
#define TIDE_WS_MAX_CONTROL 125

/* ---------------------------------------------------------------- codec */

/* tide_ws_frame_parse flags: who sent the frame. */
#define TIDE_WS_FROM_CLIENT 0x1 /* must be masked */
#define TIDE_WS_FROM_SERVER 0x2 /* must not be masked */

/* A parsed frame head. */
typedef struct tide_ws_frame {
    int fin;          /* 1 on the last frame of a message (and on control frames) */
    int opcode;       /* TIDE_WS_OP_* */
    int masked;       /* 1 if a mask key follows */
    uint8_t mask[4];  /* the key, when masked */
    uint64_t len;     /* payload length */
    size_t head_len;  /* bytes of the head (2..14) */
} tide_ws_frame;

/* Parses a frame head from buf[0..len).  Returns its length once complete
 * (the payload follows), -EAGAIN while more bytes are needed, -EPROTO for a
 * head RFC 6455 forbids: reserved bits set (no extension is negotiated), a
 * reserved opcode, a fragmented or longer than 125 bytes control frame, a
 * length not in its shortest form or with the top bit set, a mask missing
 * (TIDE_WS_FROM_CLIENT) or present (TIDE_WS_FROM_SERVER); *why (if not NULL)
 * names the fault (a static string).  -EINVAL: buf or f NULL. */
TIDE_API ssize_t tide_ws_frame_parse(const void *buf, size_t len, unsigned flags,
                                     tide_ws_frame *f, const char **why);

/* Writes a frame head into out (TIDE_WS_MAX_HEADER bytes of room): fin,
 * opcode, payload length and, if mask is not NULL, the mask bit and key.
 * Returns its length (2..14), or -EINVAL (out NULL, opcode not 0..15, a
 * control frame longer than 125 bytes or not fin). */
TIDE_API int tide_ws_frame_head(uint8_t *out, int fin, int opcode, uint64_t len,
                                const uint8_t *mask);

/* XORs data[0..len) with the mask key, the key's phase being offset (the
 * position of data[0] in the payload): masking and unmasking are the same.
 * Word at a time.  NULL data with len 0 is fine. */
TIDE_API void tide_ws_mask(void *data, size_t len, const uint8_t *mask, uint64_t offset);

/* Incremental UTF-8 validation (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF).  *state starts at 0; feed the bytes in pieces
 * cut anywhere.  Returns 0 while the bytes so far are a valid beginning,
 * -EILSEQ at the first byte that cannot be (fail fast: an impossible lead
 * or continuation byte is caught at once), -EINVAL for NULL arguments. */
TIDE_API int tide_ws_utf8_feed(uint32_t *state, const void *data, size_t len);
/* 1 if the bytes fed so far end on a character boundary (a complete text),
 * 0 if a character is cut short.  Never fails. */
TIDE_API int tide_ws_utf8_complete(uint32_t state);

/* Checks a close frame's payload: empty (no code: 1005), or a 2-byte code
 * that may be sent (1000-1003, 1007-1011, 3000-4999) and a UTF-8 reason.
 * Returns the code (1005 for an empty payload), -EPROTO (a 1-byte payload,
 * a code that may not be sent), -EILSEQ (the reason is not UTF-8),
 * -EINVAL (payload NULL with len > 0, len > 125). */
TIDE_API int tide_ws_close_parse(const void *payload, size_t len);

/* The Sec-WebSocket-Accept value for a Sec-WebSocket-Key: base64(SHA-1(key +
 * GUID)), 28 characters and a NUL in out (29 bytes of room).  Returns 28, or
 * -EINVAL (NULL arguments). */
TIDE_API int tide_ws_accept_key(const char *key, size_t key_len, char *out);

/* Checks an opening handshake request (parsed with tide_http_parse_request):
 * GET, HTTP/1.1, a Host, "Connection: upgrade", "Upgrade: websocket", a
 * Sec-WebSocket-Key of 16 bytes in base64, Sec-WebSocket-Version 13.
 * Returns 0, or -EPROTO with *status (if not NULL) the HTTP status to answer
 * (400, 405 for another method, 426 for another version: answer it with
 * "Sec-WebSocket-Version: 13") and *why (if not NULL) why; -EINVAL (req
 * NULL). */
TIDE_API int tide_ws_check_request(const struct tide_http_request *req, int *status,
                                   const char **why);

/* Checks an opening handshake response (parsed with
 * tide_http_parse_response) to a request that sent key: 101, "Upgrade:
 * websocket", "Connection: upgrade", the right Sec-WebSocket-Accept, no
 * Sec-WebSocket-Extensions (none offered), and a Sec-WebSocket-Protocol only
 * if it is one of the comma-separated protocols offered (NULL: none).
 * Returns 0, -EPROTO (*why says why), -EINVAL. */
TIDE_API int tide_ws_check_response(const struct tide_http_response *resp, const char *key,
                                    const char *offered, const char **why);

/* ---------------------------------------------------------- connections */

typedef struct tide_ws tide_ws;

typedef struct tide_ws_opts {
    size_t max_message;        /* largest message (all fragments); 0: 1 MiB;
                                  at most SIZE_MAX / 4 */
    int64_t ping_interval_ms;  /* keep-alive: a ping after this long without a frame
                                  while a task waits in tide_ws_recv; 0: none */
    int64_t ping_timeout_ms;   /* ... fail (-ETIMEDOUT, 1011) when no pong comes within
                                  this; 0: 20 000 */
    int64_t close_timeout_ms;  /* bound of the close handshake; 0: 5 000 */
    int64_t handshake_timeout_ms; /* opening handshake (connect, accept); 0: 10 000 */
    /* Subprotocols, comma-separated ("chat, superchat"): a client offers them
     * (Sec-WebSocket-Protocol); a server picks the first one of the client's
     * list that it names here.  NULL: none. */
    const char *subprotocols;
    const char *origin;        /* client: an Origin field to send; NULL: none */
    const char *extra_headers; /* client: more header lines, each ending in CRLF */
    /* wss:// clients: the TLS options (a const tide_tls_opts * from
     * <tide/tls.h>); NULL: defaults (the system CA store). */
    const void *tls;
} tide_ws_opts;

/* All fields 0 / NULL: the defaults above. */
TIDE_API void tide_ws_opts_init(tide_ws_opts *o);

/* Server side: upgrades the connection whose request head req was read
 * from s (the bytes after the head may already sit in s's buffer).  Checks
 * the request (tide_ws_check_request) and writes the 101 response, or a
 * 400/405/426 answer and returns -EPROTO.  The stream stays the caller's
 * (the HTTP server closes it); *out must be closed with tide_ws_close before
 * the stream.  Errors: -EINVAL (NULL argument, bad option), -EPROTO, -EPERM
 * (not in a task), -ENOMEM, the stream's write errors. */
TIDE_API int tide_ws_accept(tide_stream *s, const struct tide_http_request *req,
                            const tide_ws_opts *o, tide_ws **out);

/* Server side, from a handler of tide_http_serve: upgrades the request of
 * exchange x to a WebSocket.  A request that is not a valid upgrade is
 * answered through the HTTP server (426 with "Upgrade: websocket" and
 * "Sec-WebSocket-Version: 13" when it asks for no WebSocket or another
 * version, 405 with "Allow: GET" for another method, 400 for a malformed
 * handshake or one with a body) and -EPROTO is returned: the connection
 * stays a keep-alive HTTP connection where the request allows it (return
 * from the handler).  A valid one: the connection is taken over
 * (tide_http_takeover: bytes the client sent after the head, such as its
 * first frames, are kept), the 101 is written and *out is the WebSocket.
 *
 * Lifetime: *out owns the connection (tide_ws_close closes the stream) and
 * lives on after the handler returns; x and the request do not.  While the
 * handler's task runs, the connection counts in
 * tide_http_server_connections and against max_connections; a handler
 * that passes *out to another task and returns frees its slot.  Graceful
 * tide_http_server_close cancels handler tasks of upgraded connections
 * (tide_ws_recv returns -ECANCELED: close the ws then, e.g. with 1001; the
 * close is shielded and bounded by close_timeout_ms) and waits for them.
 * Errors: -EINVAL (x or out NULL, a bad option), -EPROTO (not an upgrade:
 * answered), -EALREADY (a response was begun already), -EBADF (the
 * connection was taken over already), -EPERM (not in a task), -ENOMEM, the
 * stream's write errors (the connection is then closed). */
TIDE_API int tide_ws_upgrade(struct tide_http_exchange *x, const tide_ws_opts *o,
                             tide_ws **out);

/* Client side: connects to a ws:// or wss:// URL
 * (ws[s]://host[:port][/path][?query], an IPv6 host in brackets) and runs
 * the opening handshake within o->handshake_timeout_ms.  *out owns its
 * stream.  Errors: -EINVAL (NULL, a malformed URL or option), -EPROTONOSUPPORT
 * (another scheme, or wss:// in a build without TLS), -EPROTO (the server's
 * answer is not a valid upgrade), -ETIMEDOUT, -ECANCELED, -EPERM, -ENOMEM,
 * the errors of tide_open_connection / tide_open_tls_connection. */
TIDE_API int tide_ws_connect(const char *url, const tide_ws_opts *o, tide_ws **out);

/* Client side over a stream already connected (TLS or not): sends the
 * request for resource (a path with an optional query) to host (the Host
 * field) and checks the answer.  On success *out owns s (tide_ws_close
 * closes it); on failure the caller keeps s.  Errors: as tide_ws_connect. */
TIDE_API int tide_ws_handshake(tide_stream *s, const char *host, const char *resource,
                               const tide_ws_opts *o, tide_ws **out);

/* A received message: data stays valid until the next tide_ws_recv or
 * tide_ws_close on the connection.  A text message is NUL-terminated (the
 * NUL is not counted in len). */
typedef struct tide_ws_msg {
    int opcode;       /* TIDE_WS_OP_TEXT or TIDE_WS_OP_BINARY */
    const void *data;
    size_t len;
} tide_ws_msg;

/* Waits for the next whole message (fragments joined, text validated as
 * UTF-8 while it arrives).  Pings are answered, pongs noted, and a close
 * frame is answered (its code: tide_ws_close_code) and ends the
 * connection: -EPIPE.  Errors: -EINVAL, -EBUSY (another task is in
 * tide_ws_recv), the connection errors listed at the top. */
TIDE_API int tide_ws_recv(tide_ws *ws, tide_ws_msg *msg);

/* Sends one message (TIDE_WS_OP_TEXT or TIDE_WS_OP_BINARY) in one frame
 * and waits while the stream's write queue is above its high-water mark.
 * Text is not checked: the caller sends UTF-8.  Errors: -EINVAL (ws NULL,
 * another opcode, data NULL with len > 0), -EPIPE (closing or closed),
 * -ECANCELED, -ETIMEDOUT, the stream's write errors. */
TIDE_API int tide_ws_send(tide_ws *ws, int opcode, const void *data, size_t len);

/* Sends one message in n fragments (n >= 1; the first frame carries
 * opcode, the others are continuations; an empty part is an empty frame).
 * Other senders wait; control frames may come between the fragments.
 * Errors: as tide_ws_send; -EINVAL (parts NULL, n < 1). */
TIDE_API int tide_ws_send_fragments(tide_ws *ws, int opcode, const struct iovec *parts, int n);

/* Sends a ping with up to 125 bytes of payload (the pong is noted by the
 * reading task; see tide_ws_pongs).  Errors: as tide_ws_send, -EINVAL
 * (len > 125). */
TIDE_API int tide_ws_ping(tide_ws *ws, const void *data, size_t len);

/* How many pongs were received so far. */
TIDE_API uint64_t tide_ws_pongs(const tide_ws *ws);

/* The close handshake, then frees ws: sends a close frame with code (0:
 * none; else 1000-1003, 1007-1011 or 3000-4999) and reason (NULL or up to
 * 123 bytes of UTF-8) unless one was sent already, then waits for the
 * peer's close frame (dropping data messages) within close_timeout_ms, and
 * closes the stream if ws owns it (the client's).  Runs shielded from
 * cancellation (bounded by the close timeout).  No other task may be inside
 * a call on ws.  Returns 0 after a complete handshake, or the error that
 * ended the connection (-ETIMEDOUT: the peer did not answer in time; ws is
 * freed in every case).  Errors: -EINVAL (ws NULL: nothing done; a bad code
 * or reason: ws is still closed, with 1000), -EPERM (not in a task: ws is
 * freed without a handshake). */
TIDE_API int tide_ws_close(tide_ws *ws, int code, const char *reason);

/* The code of the peer's close frame (1005 if it had none), 1006 if the
 * connection ended without one, 0 while none came (and for ws NULL).
 * Never fails. */
TIDE_API int tide_ws_close_code(const tide_ws *ws);
/* The peer's close reason (NUL-terminated, "" if none). */
TIDE_API const char *tide_ws_close_reason(const tide_ws *ws);
/* The subprotocol agreed on, or NULL. */
TIDE_API const char *tide_ws_subprotocol(const tide_ws *ws);
/* The connection's stream (to read the peer's address, say). */
TIDE_API tide_stream *tide_ws_stream(const tide_ws *ws);

#ifdef __cplusplus
}
#endif

#endif /* TIDE_WS_H */
