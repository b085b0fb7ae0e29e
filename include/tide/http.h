/*
 * tide: HTTP/1.1 parsers, server and client.  Part of the public API;
 * include <tide.h>.
 *
 * The parsers (requests, responses, fields, chunked bodies; RFC 9112) are
 * pure functions: no loop, no allocation, no global state; usable from any
 * thread and without a tide loop.  Heads are parsed in place (zero-copy):
 * every string a parse returns (method, target, path, query, header names
 * and values...) is a (pointer, length) pair into the caller's buffer,
 * valid while it is.  The server and the client (sections below) run in
 * tasks of a loop: see docs/http.md and docs/http_client.md.
 *
 * The parsers are strict by default (docs/design.md, "HTTP parser"): what
 * request smuggling or response splitting relies on is refused, never
 * repaired.  Every line must end in CRLF: a bare LF (and a bare CR) is an
 * error, in heads as in chunked bodies.
 */
#ifndef TIDE_HTTP_H
#define TIDE_HTTP_H

#include "../tide.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Defaults of the limits (a limit of 0 in a struct means these). */
#define TIDE_HTTP_MAX_HEAD_DEFAULT (16 * 1024)  /* request/status line + fields + CRLF */
#define TIDE_HTTP_MAX_TARGET_DEFAULT (8 * 1024) /* request target */
#define TIDE_HTTP_MAX_METHOD 32                 /* longer methods: 501 */

/* One header field line: name and value (leading and trailing spaces and
 * tabs stripped from the value), pointing into the parsed buffer. */
typedef struct tide_http_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} tide_http_header;

typedef enum tide_http_method {
    TIDE_HTTP_OTHER = 0, /* a valid method not below: see method/method_len */
    TIDE_HTTP_GET,
    TIDE_HTTP_HEAD,
    TIDE_HTTP_POST,
    TIDE_HTTP_PUT,
    TIDE_HTTP_DELETE,
    TIDE_HTTP_CONNECT,
    TIDE_HTTP_OPTIONS,
    TIDE_HTTP_TRACE,
    TIDE_HTTP_PATCH
} tide_http_method;

/* The four forms of request target (RFC 9112 section 3.2). */
typedef enum tide_http_target_form {
    TIDE_HTTP_ORIGIN_FORM = 0, /* /path?query */
    TIDE_HTTP_ABSOLUTE_FORM,   /* http://authority/path?query (to proxies) */
    TIDE_HTTP_AUTHORITY_FORM,  /* host:port (CONNECT only, and CONNECT only takes it) */
    TIDE_HTTP_ASTERISK_FORM    /* * (OPTIONS only) */
} tide_http_target_form;

/* How the message body is delimited (RFC 9112 section 6.3). */
typedef enum tide_http_body {
    TIDE_HTTP_BODY_NONE = 0,   /* no body follows the head */
    TIDE_HTTP_BODY_LENGTH,     /* content_length bytes follow (possibly 0) */
    TIDE_HTTP_BODY_CHUNKED,    /* chunked: use tide_http_chunked_decode */
    TIDE_HTTP_BODY_UNTIL_CLOSE /* responses only: the body ends when the connection does */
} tide_http_body;

/* ------------------------------------------------------------- requests */

typedef struct tide_http_request {
    /* In: set by tide_http_request_init, then by the caller if it wishes. */
    tide_http_header *headers; /* where the header lines go (may be NULL with cap 0) */
    size_t header_cap;         /* more header lines than this: 431 */
    size_t max_head;           /* 0: TIDE_HTTP_MAX_HEAD_DEFAULT; a longer head: 431 */
    size_t max_target;         /* 0: TIDE_HTTP_MAX_TARGET_DEFAULT; a longer target: 414 */

    /* Out: the request line. */
    const char *method;
    size_t method_len;
    tide_http_method method_id;
    const char *target; /* the whole request target */
    size_t target_len;
    tide_http_target_form target_form;
    const char *authority; /* absolute- and authority-form: host[:port]; else NULL */
    size_t authority_len;
    const char *path; /* origin- and absolute-form (an empty absolute path reads "/"),
                       * asterisk-form ("*"); NULL for authority-form */
    size_t path_len;
    const char *query; /* after the '?' (without it); NULL when there is no '?' */
    size_t query_len;
    int version_minor; /* HTTP/1.<version_minor>: 0 or 1 */

    /* Out: the header fields and what they decide. */
    size_t num_headers;
    const char *host; /* the Host field's value (NULL if absent: only HTTP/1.0) */
    size_t host_len;
    tide_http_body body;     /* NONE, LENGTH or CHUNKED */
    uint64_t content_length; /* with TIDE_HTTP_BODY_LENGTH */
    int keep_alive;          /* 1: the connection may carry another request after this one */
    int expect_continue;     /* HTTP/1.1 and "Expect: 100-continue" */
    int upgrade;             /* HTTP/1.1, "Connection: upgrade" and an Upgrade field */

    /* Out, on -EBADMSG: the status to answer (400, 414, 431, 501 or 505)
     * and why, in words (a static string; NULL when the parse did not fail). */
    int error_status;
    const char *error;
} tide_http_request;

/* Clears *req and sets its headers array and capacity; limits at defaults. */
TIDE_API void tide_http_request_init(tide_http_request *req, tide_http_header *headers,
                                     size_t header_cap);

/* Parses a request head from buf[0..len).  Leading empty lines (CRLF) are
 * skipped (RFC 9112 section 2.2) and counted in the length.  Returns:
 *  - the length of the head once it is complete (through the empty line
 *    that ends it; the body, if any, starts there), with every field of the
 *    "out" part set;
 *  - -EAGAIN when buf is a valid beginning of a head: call again with more
 *    bytes (from the start of the head; the same buffer grown is fine);
 *  - -EBADMSG when the head is malformed, too large or not supported:
 *    req->error_status says what to answer, req->error why, and the
 *    connection must be closed after the answer (keep_alive is 0).
 *    An error is reported as soon as the bytes that show it are there.
 *  - -EINVAL: buf or req NULL.
 * For every valid head, each shorter prefix gives -EAGAIN and the whole
 * head the same result whatever follows it. */
TIDE_API ssize_t tide_http_parse_request(const char *buf, size_t len, tide_http_request *req);

/* ------------------------------------------------------------ responses */

/* What the response answers, for its body framing (RFC 9112 section 6.3). */
#define TIDE_HTTP_RESP_TO_HEAD 0x1    /* a HEAD request: no body whatever the fields say */
#define TIDE_HTTP_RESP_TO_CONNECT 0x2 /* a CONNECT: a 2xx has no body (a tunnel follows) */

typedef struct tide_http_response {
    /* In. */
    tide_http_header *headers;
    size_t header_cap;
    size_t max_head; /* 0: TIDE_HTTP_MAX_HEAD_DEFAULT */
    unsigned flags;  /* TIDE_HTTP_RESP_TO_HEAD, TIDE_HTTP_RESP_TO_CONNECT */

    /* Out. */
    int version_minor; /* 0 or 1 */
    int status;        /* 100..599 */
    const char *reason;
    size_t reason_len;
    size_t num_headers;
    tide_http_body body; /* NONE for 1xx, 204, 304, HEAD and CONNECT 2xx */
    uint64_t content_length;
    int keep_alive; /* 0 with BODY_UNTIL_CLOSE */
    int upgrade;    /* 101 Switching Protocols with an Upgrade field */

    /* Out, on -EBADMSG: 502 (what a gateway answers its client) and why. */
    int error_status;
    const char *error;
} tide_http_response;

/* Clears *resp and sets its headers array and capacity; limits at
 * defaults, no flags. */
TIDE_API void tide_http_response_init(tide_http_response *resp, tide_http_header *headers,
                                      size_t header_cap);

/* Parses a response head (status line and fields): as
 * tide_http_parse_request.  A missing reason phrase, with or without the
 * space before it ("HTTP/1.1 200\r\n"), is accepted.  A 1xx other than 101
 * is complete in itself: the caller parses the final response after it. */
TIDE_API ssize_t tide_http_parse_response(const char *buf, size_t len, tide_http_response *resp);

/* --------------------------------------------------------------- fields */

/* Parses a bare field section ending with an empty line (the trailer
 * section a chunked decoder kept, say), with the rules of heads: *n gets
 * the number of lines (at most cap; more is an error).  Returns the length
 * through the empty line, -EAGAIN, -EBADMSG (*error, if not NULL, says
 * why) or -EINVAL. */
TIDE_API ssize_t tide_http_parse_fields(const char *buf, size_t len, tide_http_header *headers,
                                        size_t cap, size_t *n, const char **error);

/* The value of the first field called name (case-insensitive) among
 * headers[0..n), with its length in *len (if len is not NULL); NULL if there
 * is none. */
TIDE_API const char *tide_http_header_get(const tide_http_header *headers, size_t n,
                                          const char *name, size_t *len);
/* The index of the first field called name at or after index from, or -1
 * (also for headers or name NULL): for fields that may come several times
 * (Set-Cookie...).  Never fails otherwise. */
TIDE_API ssize_t tide_http_header_find(const tide_http_header *headers, size_t n, size_t from,
                                       const char *name);

/* Does the comma-separated list value[0..len) hold token (case-insensitive,
 * spaces around the elements ignored)?  1 or 0.  For Connection, Upgrade,
 * TE, Accept-Encoding without q-values...  Never fails (NULL gives 0). */
TIDE_API int tide_http_list_has(const char *value, size_t len, const char *token);

/* The reason phrase of a status code ("Not Found"), "" if unknown. */
TIDE_API const char *tide_http_reason(int status);
/* The name of a method ("GET"); "" for TIDE_HTTP_OTHER. */
TIDE_API const char *tide_http_method_name(tide_http_method m);

/* ------------------------------------------------------- chunked bodies */

#define TIDE_HTTP_CHUNK_LINE_DEFAULT 4096     /* chunk-size line, extensions included */
#define TIDE_HTTP_TRAILERS_DEFAULT (8 * 1024) /* trailer section, final CRLF included */

typedef struct tide_http_chunked_opts {
    size_t max_line;     /* longest chunk-size line (before its CRLF); 0: the default */
    size_t max_trailers; /* largest trailer section; 0: the default */
    /* Where the raw trailer section goes (parse it afterwards with
     * tide_http_parse_fields): NULL to drop it (it is still validated).
     * A section longer than trailer_cap is an error. */
    char *trailer_buf;
    size_t trailer_cap;
} tide_http_chunked_opts;

/* Fills *o with the defaults (limits 0: the defaults; trailers dropped). */
TIDE_API void tide_http_chunked_opts_init(tide_http_chunked_opts *o);

/* An incremental decoder of a chunked body.  The members are private but for
 * the ones marked "out". */
typedef struct tide_http_chunked {
    uint64_t remaining; /* private: data bytes left in the current chunk */
    uint64_t total;     /* out: data bytes decoded so far */
    size_t line;        /* private: length of the current line so far */
    size_t max_line, max_trailers, trailer_cap;
    char *trailer_buf;
    size_t trailer_len; /* out: bytes of the trailer section (in trailer_buf if given) */
    int state;          /* private */
    int done;           /* out: 1 once the body is complete */
    const char *error;  /* out: why it failed (static string) */
} tide_http_chunked;

/* Starts a decoder (o may be NULL: defaults). */
TIDE_API void tide_http_chunked_init(tide_http_chunked *d, const tide_http_chunked_opts *o);

/* Decodes in[0..in_len) into out[0..out_cap): *consumed gets the input
 * bytes used, *produced the data bytes written.  out may be in itself
 * (in-place decoding: the data is moved down) or NULL to drop the data
 * (then out_cap is ignored and *produced still counts it).  Input may be cut
 * anywhere: one byte at a time decodes to the same bytes as all at once.
 * Returns 1 when the body is complete (the last chunk and the trailer
 * section are consumed: in[*consumed..] is the next message), 0 when all
 * the input was used (*consumed == in_len) or out is full, -EBADMSG for a
 * malformed body (d->error says why; *consumed and *produced say how far
 * it got, the data before the fault is in out; every later call fails the
 * same way, consuming nothing), -EINVAL for NULL arguments.  After
 * completion it returns 1 consuming nothing. */
TIDE_API int tide_http_chunked_decode(tide_http_chunked *d, const char *in, size_t in_len,
                                      size_t *consumed, char *out, size_t out_cap,
                                      size_t *produced);


/* --------------------------------------------------------------- server */

/*
 * An HTTP/1.1 server over tide's streams (docs/http.md): a handler runs
 * per request, in the connection's task, with the parsed request and a
 * response writer.  Keep-alive and pipelining (responses in request order,
 * pipelined heads parsed from the bytes already read), limits answered
 * with 413/431/414/400/501/505, timeouts, a connection limit, graceful
 * shutdown, HTTP/1.0 and `Connection` handled, and the same handler over
 * TLS (a tide_tls_ctx in the options).
 */

struct tide_tls_ctx; /* include/tide/tls.h */

/* One request and its response, valid while the handler runs. */
typedef struct tide_http_exchange tide_http_exchange;
typedef struct tide_http_server tide_http_server;

/* Runs for each request, in the connection's task.  It answers with one of
 * tide_http_respond, tide_http_send_file or tide_http_begin / write / end
 * (or takes the connection over).  A handler that returns without
 * answering gets 500 sent for it; one that returns < 0 in the middle of a
 * streamed response has its connection closed (the client sees the body
 * cut short). */
typedef int (*tide_http_handler)(tide_http_exchange *x, void *arg);

typedef struct tide_http_server_opts {
    tide_server_opts server;  /* backlog, max_connections (the connection limit:
                                 accept waits at it), stack_size, write_timeout_ms... */
    size_t max_head;          /* request line + fields; 0: 16 KiB; longer: 431 */
    size_t max_headers;       /* field lines; 0: 64; more: 431 */
    uint64_t max_body;        /* request body; 0: 1 MiB; larger: 413 */
    size_t drain_max;         /* body bytes left unread by a handler that the server
                                 reads and drops to keep the connection; 0: 64 KiB;
                                 more: the connection is closed */
    int64_t idle_timeout_ms;  /* keep-alive: wait for the next request; 0: 60 000 */
    int64_t head_timeout_ms;  /* a whole head, from its first byte; 0: 10 000 */
    int64_t body_timeout_ms;  /* longest wait for body bytes; 0: 30 000 */
    unsigned max_requests;    /* per connection (then Connection: close); 0: no limit */
    struct tide_tls_ctx *tls; /* a TIDE_TLS_SERVER context: serve https (the server
                                 holds a reference); NULL: plain HTTP */
    const char *server_name;  /* the Server field's value; NULL: none sent */
} tide_http_server_opts;

/* The defaults above (tide_server_opts_init for .server). */
TIDE_API void tide_http_server_opts_init(tide_http_server_opts *o);

/* Listens on host:port (host NULL: 127.0.0.1; port 0: any, see
 * tide_http_server_port) and serves handler(x, arg) for every request.
 * Errors: -EINVAL (a NULL argument, bad options), -EPERM (not on a loop's
 * thread), -ENOMEM, -ENOTSUP (tls set in a build without TLS), and those of
 * tide_start_server / tide_start_tls_server. */
TIDE_API int tide_http_serve(const char *host, int port, tide_http_handler handler, void *arg,
                             const tide_http_server_opts *o, tide_http_server **srv);
/* The server's TCP port.  Errors: -EINVAL. */
TIDE_API int tide_http_server_port(const tide_http_server *srv);
/* Open connections. */
TIDE_API size_t tide_http_server_connections(const tide_http_server *srv);
/* Counters since the server started. */
typedef struct tide_http_server_stats {
    uint64_t connections; /* accepted (over TLS: that finished the handshake) */
    uint64_t requests;    /* heads parsed and given to the handler */
    uint64_t errors;      /* requests the server refused itself (400, 408, 413, 431...) */
} tide_http_server_stats;
/* Fills *st (zeros for a NULL srv). */
TIDE_API void tide_http_server_get_stats(const tide_http_server *srv, tide_http_server_stats *st);
/* Stops the server and frees it.  TIDE_SERVER_WAIT (graceful): stops
 * accepting, lets every request being received or handled finish (its
 * response carries Connection: close), closes idle keep-alive connections
 * at once, cancels the handlers of taken-over connections (tide_http_takeover,
 * tide_ws_upgrade: they have no request to finish; one taken over later is
 * cancelled at once), and waits for the connections to end.  TIDE_SERVER_CANCEL:
 * cancels every connection task, then waits.  Errors: as
 * tide_server_close (-EINVAL, -EPERM, -EALREADY, -EDEADLK from a handler). */
TIDE_API int tide_http_server_close(tide_http_server *srv, int how);

/* The parsed request: method, target, path and query (split), version,
 * headers, framing.  Its pointers stay valid until the handler returns
 * (also after tide_http_takeover). */
TIDE_API const tide_http_request *tide_http_exchange_request(const tide_http_exchange *x);
/* The value of request header name (case-insensitive), its length in *len
 * (if not NULL); NULL if absent. */
TIDE_API const char *tide_http_get_header(const tide_http_exchange *x, const char *name,
                                          size_t *len);
/* The connection's stream, for its addresses or TLS details (do not read
 * from or write to it: use the calls here, or tide_http_takeover). */
TIDE_API tide_stream *tide_http_exchange_stream(const tide_http_exchange *x);

/* Reads up to n bytes of the request body (Content-Length or chunked,
 * decoded): the count, 0 at its end.  The first read answers
 * "Expect: 100-continue".  Errors: -EINVAL, -EBADF (after takeover),
 * -EPERM (not in a task of the server's loop), -EMSGSIZE (over max_body: 413 is answered if no response began,
 * and the connection closes), -EBADMSG (a malformed chunked body: 400 is
 * answered likewise), -ETIMEDOUT (body_timeout_ms), -ECONNRESET (the
 * client closed before the body's end), the stream's errors. */
TIDE_API ssize_t tide_http_read_body(tide_http_exchange *x, void *buf, size_t n);
/* Reads the whole body into a malloc'd buffer (NUL-terminated; free it
 * with free()): its length, *out set (0 and "" for no body).  Errors: as
 * tide_http_read_body; -ENOMEM; on error *out is NULL. */
TIDE_API ssize_t tide_http_read_body_all(tide_http_exchange *x, char **out);

/* Sends a whole response: status (200..999), n header fields and len
 * bytes of body (none go out for HEAD and for 204/304), head and body in
 * one write.  The server adds Date and Server (a caller's field of that
 * name replaces its own), Content-Length, and Connection when the
 * connection closes after this response or for an HTTP/1.0 keep-alive; the
 * caller's Content-Length, Transfer-Encoding and Connection fields are
 * dropped (a caller's "Connection: close" is honoured).  Errors: -EINVAL
 * (bad status, headers NULL with n > 0, body NULL with len > 0, a field
 * name that is not a token or a value with CR, LF or NUL), -EALREADY (a
 * response was sent or begun), -EBADF (after takeover), -EPERM, -ENOMEM,
 * the stream's write errors. */
TIDE_API int tide_http_respond(tide_http_exchange *x, int status, const tide_http_header *headers,
                               size_t n, const void *body, size_t len);
/* Begins a streamed response: chunked for HTTP/1.1 clients, delimited by
 * the connection's close for HTTP/1.0 ones (or length-delimited if the
 * caller gives a Content-Length field: then the caller must write exactly
 * that many bytes).  Errors: as tide_http_respond; -EINVAL for a
 * Content-Length value that is not a decimal number. */
TIDE_API int tide_http_begin(tide_http_exchange *x, int status, const tide_http_header *headers,
                             size_t n);
/* Writes n bytes of a begun response (one chunk; nothing for HEAD), waiting
 * while the client is slow (drain).  Returns n.  Errors: -EINVAL, -EPROTO
 * (no response begun, or it ended), -EMSGSIZE (beyond a given
 * Content-Length), the stream's write errors. */
TIDE_API ssize_t tide_http_write(tide_http_exchange *x, const void *buf, size_t n);
/* Ends a begun response (the last chunk).  Errors: -EPROTO (none begun, or
 * fewer bytes than its Content-Length were written: the connection will
 * close), the stream's write errors. */
TIDE_API int tide_http_end(tide_http_exchange *x);
/* Sends len bytes of file fd from offset as the body of a response
 * (Content-Length: len), with sendfile (tide_tls_sendfile over TLS); HEAD
 * gets the head only.  fd stays the caller's.  Errors: as tide_http_respond;
 * -EBADF (fd < 0), -EINVAL (offset < 0), -EIO (the file ended early: the
 * connection closes), the errors of tide_sendfile. */
TIDE_API int tide_http_send_file(tide_http_exchange *x, int status, const tide_http_header *headers,
                                 size_t n, int fd, off_t offset, size_t len);
/* Takes the connection over (WebSocket, CONNECT...): returns its stream,
 * with every byte read after the request head (body or not) back in its
 * buffer, and from then on the server never reads, writes or closes it:
 * the handler owns it and must tide_stream_close it.  The request stays
 * valid until the handler returns; until then the connection counts in
 * tide_http_server_connections and against max_connections.  NULL (errno is not set) if x is NULL
 * or a response was already begun. */
TIDE_API tide_stream *tide_http_takeover(tide_http_exchange *x);
/* --------------------------------------------------------------- client */

/*
 * An HTTP/1.1 client with a connection pool (docs/http_client.md).
 *
 *   tide_http_client *c;
 *   tide_http_resp *r;
 *   tide_http_client_new(&c, NULL);
 *   if (tide_http_client_request(c, "http://example.com/", NULL, &r) == 0) {
 *       printf("%d\n", tide_http_resp_status(r));
 *       while ((n = tide_http_resp_read(r, buf, sizeof buf)) > 0) ...
 *       tide_http_resp_free(r);
 *   }
 *   tide_http_client_free(c);
 *
 * Requests run in a task and are bounded by its cancel scopes: a request or
 * a body read cut short by a deadline or a cancellation returns -ETIMEDOUT
 * or -ECANCELED and its connection is closed, never pooled.  A client
 * belongs to one loop; its requests may run in many tasks at once.
 *
 * Errors common to the request calls: -EINVAL (a bad argument or URL),
 * -EPERM (not in a task), -ENOMEM, -ECANCELED, -ETIMEDOUT, connection errors
 * (-ECONNREFUSED, -ECONNRESET, a TIDE_EAI code...), TLS errors (see
 * <tide/tls.h>), -EPROTONOSUPPORT (https in a tide built without TLS),
 * -EBADMSG (a malformed response head or chunked body), -EPROTO (the
 * connection ended inside a response), -EMSGSIZE (a response head over the
 * limit).
 */

/* A URL split in place: (pointer, length) pairs into the parsed string. */
typedef struct tide_http_url {
    int tls;          /* 1 for https, 0 for http */
    const char *host; /* without the brackets of an IPv6 literal */
    size_t host_len;
    int port;         /* the URL's, else 80 / 443 */
    int port_given;   /* 1 if the URL names the port */
    const char *path; /* path and query ("/" when the URL has none: path_len 0) */
    size_t path_len;
} tide_http_url;

/* Parses an absolute http:// or https:// URL (scheme case-insensitive; a
 * host name, an IPv4 address or a bracketed IPv6 literal; an optional port;
 * path and query; a fragment is dropped).  Refused with -EINVAL: another
 * scheme, userinfo ("user@host"), an empty or bad host, a port outside
 * 1..65535, spaces or control characters, url NULL.  Returns 0. */
TIDE_API int tide_http_url_parse(const char *url, tide_http_url *u);

typedef struct tide_http_client tide_http_client;
typedef struct tide_http_resp tide_http_resp;

typedef struct tide_http_client_opts {
    size_t max_per_host;     /* requests in flight per scheme+host+port (more wait
                                for a slot, within their scopes; a response holds
                                its slot until freed); 0: 16 */
    size_t max_idle_per_host; /* idle keep-alive connections kept per host; 0: 8 */
    int64_t idle_timeout_ms; /* a pooled connection idle longer is closed; 0: 30 000 */
    size_t max_head;         /* longest response head; 0: TIDE_HTTP_MAX_HEAD_DEFAULT */
    size_t max_headers;      /* most header fields in a response; 0: 64 */
    /* https: the TLS client context (from tide_tls_ctx_new; it must outlive
     * the client).  NULL: tide's shared one, which verifies servers with the
     * system CA store.  The host of the URL is sent as SNI and checked. */
    struct tide_tls_ctx *tls_ctx;
} tide_http_client_opts;

/* Sets the defaults (see the fields); o NULL is ignored. */
TIDE_API void tide_http_client_opts_init(tide_http_client_opts *o);

/* A new client and its (empty) pool; o may be NULL.  Needs no loop.
 * Errors: -EINVAL (c NULL, max_idle_per_host > max_per_host, a negative
 * idle timeout, max_head outside 64..65536, max_headers over 4096),
 * -ENOMEM. */
TIDE_API int tide_http_client_new(tide_http_client **c, const tide_http_client_opts *o);
/* Closes the pooled connections and frees c (NULL: 0).  A client with
 * pooled connections must be freed while the loop that ran its requests
 * still exists (in one of its tasks, typically): the connections are
 * streams of that loop.  Errors: -EBUSY (a response of c is not freed yet
 * or a request is running: nothing is freed). */
TIDE_API int tide_http_client_free(tide_http_client *c);
/* Connections opened / pooled connections reused by c so far, and idle ones
 * in the pool now (tests, statistics); 0 for c NULL.  Never fail. */
TIDE_API uint64_t tide_http_client_connects(const tide_http_client *c);
TIDE_API uint64_t tide_http_client_reuses(const tide_http_client *c);
TIDE_API size_t tide_http_client_idle(const tide_http_client *c);

/* A streamed (chunked) request body: writes up to cap bytes into buf and
 * returns the count, 0 at the end, or a negative errno to abort the
 * request (it is returned by tide_http_client_request).  It runs in the
 * requesting task and may suspend. */
typedef ssize_t (*tide_http_body_fn)(void *arg, void *buf, size_t cap);

typedef struct tide_http_req_opts {
    const char *method;              /* NULL: "GET" */
    const tide_http_header *headers; /* caller fields; Host is added unless given;
                                        Content-Length and Transfer-Encoding are
                                        tide's to set (-EINVAL) */
    size_t num_headers;
    const void *body; /* a fixed body of body_len bytes (Content-Length) */
    size_t body_len;
    tide_http_body_fn body_fn; /* or a streamed one (chunked); not both */
    void *body_arg;
    /* Redirects followed (301/302/303: then GET without the body, 307/308:
     * same method and body; a relative Location is resolved against the
     * URL).  0: none, the 3xx is the response (the default).  More than
     * this in a row: -ELOOP.  A 307/308 of a streamed body is not followed.
     * Authorization and Cookie fields are not sent to another origin. */
    int max_redirects;
} tide_http_req_opts;

/* Clears o: a GET with no fields and no body, redirects not followed
 * (o NULL is ignored). */
TIDE_API void tide_http_req_opts_init(tide_http_req_opts *o);

/* Sends a request to url (http:// or https://) over a pooled keep-alive
 * connection to its host or a new one, and reads the response head (1xx
 * interim answers skipped).  On success *r is the response: read its body
 * with tide_http_resp_read / _read_all, then tide_http_resp_free it (which
 * pools the connection if the body was read to its end and both sides
 * allow keep-alive).  A pooled connection the server had closed is
 * retried once on a new one for idempotent methods (GET, HEAD, PUT,
 * DELETE, OPTIONS, TRACE) without a streamed body.
 * Errors: see above; also -ELOOP (too many redirects), the body_fn's error,
 * -E2BIG (request head over max_head). */
TIDE_API int tide_http_client_request(tide_http_client *c, const char *url,
                                      const tide_http_req_opts *o, tide_http_resp **r);

/* The status code (100..599); the reason phrase (its length in *len if len
 * is not NULL; "" if none).  Status: -EINVAL for r NULL or freed (the
 * reason is then ""). */
TIDE_API int tide_http_resp_status(const tide_http_resp *r);
TIDE_API const char *tide_http_resp_reason(const tide_http_resp *r, size_t *len);
/* The HTTP/1.x minor version of the response (0 or 1); -EINVAL for r NULL
 * or freed. */
TIDE_API int tide_http_resp_version(const tide_http_resp *r);
/* The first field called name (case-insensitive), its length in *len; NULL
 * if none (or r or name NULL).  Valid until tide_http_resp_free. */
TIDE_API const char *tide_http_resp_header(const tide_http_resp *r, const char *name,
                                           size_t *len);
/* Every field of the head (*n of them); NULL and 0 for r NULL or freed. */
TIDE_API const tide_http_header *tide_http_resp_headers(const tide_http_resp *r, size_t *n);
/* A trailer field of a chunked body, once it was read to the end
 * (case-insensitive); NULL if none (or r or name NULL). */
TIDE_API const char *tide_http_resp_trailer(const tide_http_resp *r, const char *name,
                                            size_t *len);
/* The body's Content-Length, or -1 (chunked, until close, r NULL); 0 when
 * the response has no body (HEAD, 204, 304). */
TIDE_API int64_t tide_http_resp_content_length(const tide_http_resp *r);
/* The URL the response came from: the caller's string when no redirect was
 * followed (valid as long as it is), else tide's copy of the last Location
 * resolved (valid until tide_http_resp_free). */
TIDE_API const char *tide_http_resp_url(const tide_http_resp *r);
/* 1 if the response came over a pooled (reused) connection, else 0. */
TIDE_API int tide_http_resp_reused(const tide_http_resp *r);

/* Reads up to cap bytes of the body (chunked framing removed): the count,
 * 0 at its end.  Errors: -EINVAL (r NULL, buf NULL with cap > 0), -EPERM,
 * -ECANCELED, -ETIMEDOUT (the connection is then not pooled), -EBADMSG (a
 * malformed chunked body), -EPROTO (the connection ended before the body),
 * -ECONNRESET...; an error sticks: later reads return it. */
TIDE_API ssize_t tide_http_resp_read(tide_http_resp *r, void *buf, size_t cap);
/* Reads the rest of the body into a new buffer: its length, with *out a
 * malloc'd copy plus a NUL (free it with free()).  Errors: as
 * tide_http_resp_read; -EINVAL (out NULL), -EFBIG (the body is longer than
 * max bytes; max 0: no limit), -ENOMEM.  On an error *out is NULL. */
TIDE_API ssize_t tide_http_resp_read_all(tide_http_resp *r, char **out, size_t max);
/* Releases r: its connection goes back to the pool if the body was read to
 * the end, without error, and keep-alive holds; else it is closed.  NULL
 * is fine.  Returns 0, or -EINVAL for a stale handle (freed already). */
TIDE_API int tide_http_resp_free(tide_http_resp *r);

#ifdef __cplusplus
}
#endif

#endif /* TIDE_HTTP_H */
