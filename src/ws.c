/*
 * WebSocket connections (RFC 6455) over tide streams: the opening
 * handshake (server: tide_ws_accept, client: tide_ws_connect /
 * tide_ws_handshake), reading messages, sending them, ping/pong and the
 * close handshake.  The pure codec is in ws_codec.c; docs/websocket.md
 * explains the design.
 *
 * Concurrency: one task reads (ws->reading); senders hold send_lock for a
 * whole message.  Writing to a tide_stream never suspends, so a frame that
 * is written with one call is atomic; only frames longer than one chunk
 * are written in pieces with drains between them (ws->mid_frame).  The
 * reader writes its control frames (pong, close) at once unless a frame is
 * cut in the middle; then it leaves them in ws->pend_* and the sender puts
 * them out when that frame is complete.
 */
#include "tide.h"
#include "tide/ws.h"
#ifdef TIDE__HAVE_TLS
#include "tide/tls.h"
#endif

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#if defined(__linux__)
#include <sys/random.h>
#else
#include <stdlib.h>
#endif

#include "tide_int.h"
#include "ws_int.h"

#define WS_CHUNK (64 * 1024)     /* payload read / written per stream call */
#define WS_MSG_MIN 4096          /* the message buffer's first size */
#define WS_SBUF (16 * 1024)      /* client: masking buffer */
#define WS_CTL_BACKLOG (1 << 20) /* pongs are skipped while this much waits to be written */

struct tide_ws {
    tide_stream *s;
    int owns;   /* the stream is ours to close (client) */
    int server; /* 1: we are the server (frames come masked, go unmasked) */
    size_t max_message;
    int64_t ping_interval, ping_timeout, close_timeout;
    tide_lock send_lock;
    int reading;   /* a task is in tide_ws_recv */
    int mid_frame; /* a frame is partly written to the stream */
    int err;       /* sticky: why the connection ended (-EPIPE: closed) */
    int close_sent, close_rcvd;
    int close_code;
    char close_reason[TIDE_WS_MAX_CONTROL];
    char *subprotocol;

    /* Reading: the frame head so far, the frame being read, the message. */
    uint8_t head[TIDE_WS_MAX_HEADER];
    size_t head_have;
    int in_payload;
    tide_ws_frame fr;
    uint64_t fr_done;
    int msg_op; /* opcode of the message being assembled, 0 if none */
    size_t mlen;
    uint32_t utf8;
    uint8_t *mbuf;
    size_t mcap;
    uint8_t ctl[TIDE_WS_MAX_CONTROL + 1];

    /* Control frames waiting for the end of a partly written frame. */
    int pend_ping, pend_pong, pend_close;
    uint8_t ping[TIDE_WS_MAX_CONTROL], pong[TIDE_WS_MAX_CONTROL], closebuf[TIDE_WS_MAX_CONTROL];
    size_t ping_len, pong_len, close_len;

    int ping_out; /* a keep-alive ping waits for its pong */
    int64_t ping_deadline;
    uint64_t pongs;

    /* Client: mask keys come from a pool of kernel random bytes. */
    uint8_t rnd[256];
    size_t rnd_at;
    uint8_t *sbuf;
};

static void fill_random(void *p, size_t n)
{
#if defined(__linux__)
    uint8_t *b = (uint8_t *)p;
    while (n) {
        ssize_t r = getrandom(b, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            /* getrandom cannot fail with a valid buffer on Linux >= 3.17;
             * keep going with whatever the buffer holds rather than stop. */
            break;
        }
        b += r;
        n -= (size_t)r;
    }
#else
    arc4random_buf(p, n);
#endif
}

static void next_mask(tide_ws *ws, uint8_t key[4])
{
    if (ws->rnd_at + 4 > sizeof ws->rnd) {
        fill_random(ws->rnd, sizeof ws->rnd);
        ws->rnd_at = 0;
    }
    memcpy(key, ws->rnd + ws->rnd_at, 4);
    ws->rnd_at += 4;
}

void tide_ws_opts_init(tide_ws_opts *o)
{
    if (o)
        memset(o, 0, sizeof *o);
}

static int opts_check(const tide_ws_opts *o)
{
    if (!o)
        return 0;
    if (o->ping_interval_ms < 0 || o->ping_timeout_ms < 0 || o->close_timeout_ms < 0 ||
        o->handshake_timeout_ms < 0 || o->max_message > SIZE_MAX / 4)
        return -EINVAL;
    return 0;
}

static tide_ws *ws_new(tide_stream *s, int server, const tide_ws_opts *o)
{
    tide_ws *ws = (tide_ws *)tide__calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    ws->s = s;
    ws->server = server;
    ws->max_message = o && o->max_message ? o->max_message : (size_t)1 << 20;
    ws->ping_interval = o ? o->ping_interval_ms : 0;
    ws->ping_timeout = o && o->ping_timeout_ms ? o->ping_timeout_ms : 20000;
    ws->close_timeout = o && o->close_timeout_ms ? o->close_timeout_ms : 5000;
    ws->rnd_at = sizeof ws->rnd;
    tide_lock_init(&ws->send_lock);
    if (!server) {
        ws->sbuf = (uint8_t *)tide__malloc(WS_SBUF + TIDE_WS_MAX_HEADER);
        if (!ws->sbuf) {
            tide__free(ws);
            return NULL;
        }
    }
    return ws;
}

static void ws_free(tide_ws *ws)
{
    tide__free(ws->mbuf);
    tide__free(ws->sbuf);
    tide__free(ws->subprotocol);
    tide__free(ws);
}

/* ------------------------------------------------------------- writing */

/* Writes one whole frame if it fits in one stream call; never suspends.
 * Used for control frames and small data frames. */
static int write_small(tide_ws *ws, int op, int fin, const void *data, size_t len)
{
    uint8_t head[TIDE_WS_MAX_HEADER];
    if (ws->server) {
        int hl = tide_ws_frame_head(head, fin, op, len, NULL);
        struct iovec iov[2] = {{head, (size_t)hl}, {(void *)(uintptr_t)data, len}};
        ssize_t n = tide_stream_writev(ws->s, iov, len ? 2 : 1);
        return n < 0 ? (int)n : 0;
    }
    uint8_t key[4];
    next_mask(ws, key);
    int hl = tide_ws_frame_head(ws->sbuf, fin, op, len, key);
    if (len)
        memcpy(ws->sbuf + hl, data, len);
    tide_ws_mask(ws->sbuf + hl, len, key, 0);
    ssize_t n = tide_stream_write(ws->s, ws->sbuf, (size_t)hl + len);
    return n < 0 ? (int)n : 0;
}

/* Puts out the control frames the reader left while a frame was cut. */
static int flush_pending(tide_ws *ws)
{
    int rc = 0;
    if (ws->pend_ping) {
        ws->pend_ping = 0;
        rc = write_small(ws, TIDE_WS_OP_PING, 1, ws->ping, ws->ping_len);
    }
    if (rc >= 0 && ws->pend_pong) {
        ws->pend_pong = 0;
        rc = write_small(ws, TIDE_WS_OP_PONG, 1, ws->pong, ws->pong_len);
    }
    if (rc >= 0 && ws->pend_close) {
        ws->pend_close = 0;
        rc = write_small(ws, TIDE_WS_OP_CLOSE, 1, ws->closebuf, ws->close_len);
    }
    return rc;
}

/* A control frame from the reader (or close): at once unless a frame is
 * cut in the middle.  Never suspends. */
static int send_control(tide_ws *ws, int op, const void *data, size_t len)
{
    if (ws->mid_frame) {
        if (op == TIDE_WS_OP_PING) {
            memcpy(ws->ping, data, len);
            ws->ping_len = len;
            ws->pend_ping = 1;
        } else if (op == TIDE_WS_OP_PONG) {
            memcpy(ws->pong, data, len);
            ws->pong_len = len;
            ws->pend_pong = 1;
        } else {
            memcpy(ws->closebuf, data, len);
            ws->close_len = len;
            ws->pend_close = 1;
        }
        return 0;
    }
    return write_small(ws, op, 1, data, len);
}

/* Writes one frame; frames longer than a chunk go out in pieces with a
 * drain between them (the only suspension). */
static int write_frame(tide_ws *ws, int op, int fin, const void *data, size_t len)
{
    size_t small = ws->server ? WS_CHUNK : WS_SBUF;
    if (len <= small)
        return write_small(ws, op, fin, data, len);
    uint8_t head[TIDE_WS_MAX_HEADER], key[4];
    if (!ws->server)
        next_mask(ws, key);
    int hl = tide_ws_frame_head(head, fin, op, len, ws->server ? NULL : key);
    ssize_t n = tide_stream_write(ws->s, head, (size_t)hl);
    if (n < 0)
        return (int)n;
    ws->mid_frame = 1;
    const uint8_t *p = (const uint8_t *)data;
    size_t done = 0;
    while (done < len) {
        size_t take = len - done < small ? len - done : small;
        if (ws->server) {
            n = tide_stream_write(ws->s, p + done, take);
        } else {
            memcpy(ws->sbuf, p + done, take);
            tide_ws_mask(ws->sbuf, take, key, done);
            n = tide_stream_write(ws->s, ws->sbuf, take);
        }
        if (n < 0)
            return (int)n;
        done += take;
        if (done < len) {
            int rc = tide_stream_drain(ws->s);
            if (rc < 0)
                return rc;
        }
    }
    ws->mid_frame = 0;
    return flush_pending(ws);
}

static int send_check(tide_ws *ws, int opcode)
{
    if (!ws || (opcode != TIDE_WS_OP_TEXT && opcode != TIDE_WS_OP_BINARY))
        return -EINVAL;
    if (!tide_current_task())
        return -EPERM;
    if (ws->err && ws->err != -EPIPE)
        return ws->err;
    if (ws->close_sent || ws->err)
        return -EPIPE;
    return 0;
}

/* After a frame was cut by an error, the connection cannot go on. */
static int send_failed(tide_ws *ws, int rc)
{
    if (ws->mid_frame && !ws->err)
        ws->err = rc;
    return rc;
}

int tide_ws_send_fragments(tide_ws *ws, int opcode, const struct iovec *parts, int n)
{
    int rc = send_check(ws, opcode);
    if (rc < 0)
        return rc;
    if (!parts || n < 1)
        return -EINVAL;
    for (int i = 0; i < n; i++)
        if (!parts[i].iov_base && parts[i].iov_len)
            return -EINVAL;
    rc = tide_lock_acquire(&ws->send_lock);
    if (rc < 0)
        return rc;
    if (ws->close_sent || ws->err) {
        rc = ws->err && ws->err != -EPIPE ? ws->err : -EPIPE;
        goto out;
    }
    for (int i = 0; i < n && rc >= 0; i++)
        rc = write_frame(ws, i == 0 ? opcode : TIDE_WS_OP_CONT, i == n - 1, parts[i].iov_base,
                         parts[i].iov_len);
    if (rc >= 0)
        rc = tide_stream_drain(ws->s);
    if (rc < 0)
        rc = send_failed(ws, rc);
out:
    tide_lock_release(&ws->send_lock);
    return rc < 0 ? rc : 0;
}

int tide_ws_send(tide_ws *ws, int opcode, const void *data, size_t len)
{
    if (!data && len)
        return -EINVAL;
    struct iovec iov = {(void *)(uintptr_t)data, len};
    return tide_ws_send_fragments(ws, opcode, &iov, 1);
}

int tide_ws_ping(tide_ws *ws, const void *data, size_t len)
{
    int rc = send_check(ws, TIDE_WS_OP_BINARY);
    if (rc < 0)
        return rc;
    if ((!data && len) || len > TIDE_WS_MAX_CONTROL)
        return -EINVAL;
    rc = send_control(ws, TIDE_WS_OP_PING, data, len);
    /* A ping is a control frame: it may go between fragments, and it never
     * waits for the lock; it waits only for the write queue to drain. */
    if (rc >= 0 && !tide_lock_locked(&ws->send_lock))
        rc = tide_stream_drain(ws->s);
    return rc < 0 ? rc : 0;
}

uint64_t tide_ws_pongs(const tide_ws *ws)
{
    return ws ? ws->pongs : 0;
}

/* Sends our close frame (code 0: without a code). */
static int send_close(tide_ws *ws, int code, const char *reason)
{
    if (ws->close_sent)
        return 0;
    uint8_t p[TIDE_WS_MAX_CONTROL];
    size_t n = 0;
    if (code) {
        p[0] = (uint8_t)(code >> 8);
        p[1] = (uint8_t)code;
        n = 2;
        if (reason) {
            size_t rl = strlen(reason);
            if (rl > TIDE_WS_MAX_CONTROL - 2)
                rl = TIDE_WS_MAX_CONTROL - 2;
            memcpy(p + 2, reason, rl);
            n += rl;
        }
    }
    ws->close_sent = 1;
    return send_control(ws, TIDE_WS_OP_CLOSE, p, n);
}

/* _Fail the WebSocket Connection_: the error sticks, the close frame with
 * code goes out (if none went yet). */
static int fail(tide_ws *ws, int code, int err)
{
    if (!ws->err)
        ws->err = err;
    if (code)
        send_close(ws, code, NULL);
    return ws->err;
}

/* The stream failed or ended under us: no close frame came. */
static int lost(tide_ws *ws, ssize_t n)
{
    if (n == -ECANCELED || n == -ETIMEDOUT)
        return (int)n; /* not sticky: the state is intact, a later call resumes */
    if (!ws->close_code)
        ws->close_code = TIDE_WS_CLOSE_ABNORMAL;
    if (!ws->err)
        ws->err = n < 0 ? (int)n : -ECONNRESET;
    return ws->err;
}

/* ------------------------------------------------------------- reading */

static int grow_msg(tide_ws *ws, size_t need)
{
    if (need <= ws->mcap)
        return 0;
    size_t cap = ws->mcap ? ws->mcap : WS_MSG_MIN;
    while (cap < need)
        cap *= 2;
    if (cap > ws->max_message + 1 && need <= ws->max_message + 1)
        cap = ws->max_message + 1;
    uint8_t *p = (uint8_t *)tide__realloc(ws->mbuf, cap);
    if (!p)
        return -ENOMEM;
    ws->mbuf = p;
    ws->mcap = cap;
    return 0;
}

/* Reads n bytes exactly (0 < n); EOF and errors go through lost(). */
static int read_exact(tide_ws *ws, void *buf, size_t n)
{
    ssize_t r = tide_stream_readexactly(ws->s, buf, n);
    if (r < 0 || (size_t)r < n) {
        if (r > 0) /* EOF in the middle: what came is useless now */
            r = -ECONNRESET;
        return lost(ws, r);
    }
    return 0;
}

/* Reads the first bytes of a frame head, with the keep-alive pings. */
static int read_first(tide_ws *ws)
{
    for (;;) {
        if (ws->ping_interval <= 0)
            return read_exact(ws, ws->head, 2);
        int64_t wait = ws->ping_interval;
        if (ws->ping_out) {
            wait = ws->ping_deadline - tide_now();
            if (wait <= 0)
                return fail(ws, TIDE_WS_CLOSE_INTERNAL, -ETIMEDOUT);
        }
        tide_scope sc;
        int rc = tide_timeout_begin(&sc, wait);
        if (rc < 0)
            return rc;
        ssize_t r = tide_stream_readexactly(ws->s, ws->head, 2);
        int te = tide_timeout_end(&sc);
        if (r == -ETIMEDOUT && te == -ETIMEDOUT) {
            if (!ws->ping_out) {
                rc = send_control(ws, TIDE_WS_OP_PING, "tide", 4);
                if (rc < 0)
                    return lost(ws, rc);
                ws->ping_out = 1;
                ws->ping_deadline = tide_now() + ws->ping_timeout;
            }
            continue;
        }
        if (r < 0 || r < 2) {
            if (r > 0)
                r = -ECONNRESET;
            return lost(ws, r);
        }
        return 0;
    }
}

static int read_head(tide_ws *ws)
{
    int rc;
    if (ws->head_have < 2) {
        rc = read_first(ws);
        if (rc < 0)
            return rc;
        ws->head_have = 2;
    }
    const char *why;
    unsigned from = ws->server ? TIDE_WS_FROM_CLIENT : TIDE_WS_FROM_SERVER;
    ssize_t hl = tide_ws_frame_parse(ws->head, ws->head_have, from, &ws->fr, &why);
    if (hl == -EAGAIN) {
        size_t len7 = ws->head[1] & 0x7f;
        size_t need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((ws->head[1] & 0x80) ? 4 : 0);
        rc = read_exact(ws, ws->head + 2, need - 2);
        if (rc < 0)
            return rc;
        ws->head_have = need;
        hl = tide_ws_frame_parse(ws->head, ws->head_have, from, &ws->fr, &why);
    }
    if (hl < 0)
        return fail(ws, TIDE_WS_CLOSE_PROTOCOL, -EPROTO);
    ws->head_have = 0;
    /* Any frame shows the peer is alive. */
    ws->ping_out = 0;
    return 0;
}

/* Handles a complete control frame in ws->ctl.  Returns 0 to read on, or
 * the error that ends the read (-EPIPE after a close frame). */
static int on_control(tide_ws *ws)
{
    size_t len = (size_t)ws->fr.len;
    switch (ws->fr.opcode) {
    case TIDE_WS_OP_PING:
        if (ws->close_sent)
            return 0;
        if (tide_stream_write_pending(ws->s) > WS_CTL_BACKLOG)
            return 0; /* a peer that pings and never reads gets no more pongs */
        {
            int rc = send_control(ws, TIDE_WS_OP_PONG, ws->ctl, len);
            if (rc < 0)
                return lost(ws, rc);
        }
        return 0;
    case TIDE_WS_OP_PONG:
        ws->pongs++;
        return 0;
    default: { /* close */
        int code = tide_ws_close_parse(ws->ctl, len);
        if (code == -EILSEQ)
            return fail(ws, TIDE_WS_CLOSE_INVALID_DATA, -EILSEQ);
        if (code < 0)
            return fail(ws, TIDE_WS_CLOSE_PROTOCOL, -EPROTO);
        ws->close_rcvd = 1;
        ws->close_code = code;
        if (len > 2) {
            memcpy(ws->close_reason, ws->ctl + 2, len - 2);
            ws->close_reason[len - 2] = 0;
        }
        /* Echo the code (RFC 6455 section 5.5.1). */
        send_close(ws, code == TIDE_WS_CLOSE_NO_STATUS ? 0 : code, NULL);
        if (!ws->err)
            ws->err = -EPIPE;
        return ws->err;
    }
    }
}

/* Reads frames until a whole message (draining: drops messages, until the
 * close frame). */
static int recv_loop(tide_ws *ws, tide_ws_msg *msg, int draining)
{
    for (;;) {
        if (ws->err)
            return ws->err;
        if (!ws->in_payload) {
            int rc = read_head(ws);
            if (rc < 0)
                return rc;
            int op = ws->fr.opcode;
            if (op < 8) {
                if (op == TIDE_WS_OP_CONT && !ws->msg_op)
                    return fail(ws, TIDE_WS_CLOSE_PROTOCOL, -EPROTO);
                if (op != TIDE_WS_OP_CONT && ws->msg_op)
                    return fail(ws, TIDE_WS_CLOSE_PROTOCOL, -EPROTO);
                if (op != TIDE_WS_OP_CONT) {
                    ws->msg_op = op;
                    ws->mlen = 0;
                    ws->utf8 = 0;
                }
                if (ws->fr.len > ws->max_message - ws->mlen)
                    return fail(ws, TIDE_WS_CLOSE_TOO_BIG, -EMSGSIZE);
                if (grow_msg(ws, ws->mlen + (size_t)ws->fr.len + 1) < 0)
                    return fail(ws, TIDE_WS_CLOSE_INTERNAL, -ENOMEM);
            }
            ws->in_payload = 1;
            ws->fr_done = 0;
        }
        int ctl = ws->fr.opcode >= 8;
        uint8_t *dst = ctl ? ws->ctl : ws->mbuf + ws->mlen;
        while (ws->fr_done < ws->fr.len) {
            uint64_t left = ws->fr.len - ws->fr_done;
            size_t take = left < WS_CHUNK ? (size_t)left : WS_CHUNK;
            uint8_t *p = dst + ws->fr_done;
            int rc = read_exact(ws, p, take);
            if (rc < 0)
                return rc;
            if (ws->fr.masked)
                tide_ws_mask(p, take, ws->fr.mask, ws->fr_done);
            ws->fr_done += take;
            if (!ctl && ws->msg_op == TIDE_WS_OP_TEXT && !draining &&
                tide_ws_utf8_feed(&ws->utf8, p, take) < 0)
                return fail(ws, TIDE_WS_CLOSE_INVALID_DATA, -EILSEQ);
        }
        ws->in_payload = 0;
        if (ctl) {
            int rc = on_control(ws);
            if (rc < 0)
                return rc;
            continue;
        }
        ws->mlen += (size_t)ws->fr.len;
        if (!ws->fr.fin)
            continue;
        int op = ws->msg_op;
        ws->msg_op = 0;
        if (draining)
            continue;
        if (op == TIDE_WS_OP_TEXT && !tide_ws_utf8_complete(ws->utf8))
            return fail(ws, TIDE_WS_CLOSE_INVALID_DATA, -EILSEQ);
        if (!ws->mbuf && grow_msg(ws, 1) < 0)
            return fail(ws, TIDE_WS_CLOSE_INTERNAL, -ENOMEM);
        ws->mbuf[ws->mlen] = 0;
        msg->opcode = op;
        msg->data = ws->mbuf;
        msg->len = ws->mlen;
        return 0;
    }
}

int tide_ws_recv(tide_ws *ws, tide_ws_msg *msg)
{
    if (!ws || !msg)
        return -EINVAL;
    if (!tide_current_task())
        return -EPERM;
    if (ws->err)
        return ws->err;
    if (ws->reading)
        return -EBUSY;
    ws->reading = 1;
    int rc = recv_loop(ws, msg, 0);
    ws->reading = 0;
    return rc;
}

/* ------------------------------------------------------------- closing */

static int reason_ok(int code, const char *reason)
{
    if (code == 0)
        return !reason;
    int ok = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
             (code >= 3000 && code <= 4999);
    if (!ok)
        return 0;
    if (!reason)
        return 1;
    size_t n = strlen(reason);
    uint32_t st = 0;
    return n <= TIDE_WS_MAX_CONTROL - 2 && tide_ws_utf8_feed(&st, reason, n) == 0 &&
           tide_ws_utf8_complete(st);
}

int tide_ws_close(tide_ws *ws, int code, const char *reason)
{
    if (!ws)
        return -EINVAL;
    int bad = 0;
    if (!reason_ok(code, reason)) {
        bad = -EINVAL;
        code = TIDE_WS_CLOSE_NORMAL;
        reason = NULL;
    }
    if (!tide_current_task()) {
        if (ws->owns)
            tide_stream_close(ws->s);
        ws_free(ws);
        return -EPERM;
    }
    tide_scope shield, to;
    tide_shield_begin(&shield);
    int rc = tide_timeout_begin(&to, ws->close_timeout);
    int timed = rc == 0;
    if (!ws->mid_frame)
        send_close(ws, code, reason);
    int frc = tide_stream_flush(ws->s);
    /* Wait for the peer's close frame unless the connection already ended
     * (a close came, or it failed: then we do not wait, RFC 6455 7.1.7). */
    if (!ws->err && ws->close_sent && frc >= 0) {
        tide_ws_msg m;
        rc = recv_loop(ws, &m, 1);
        if (rc == -EPIPE && ws->close_rcvd)
            rc = 0;
        else if (rc == -ETIMEDOUT)
            ws->close_code = TIDE_WS_CLOSE_ABNORMAL;
        /* Our flush of the echo is not needed: the peer closed already. */
    } else if (ws->close_rcvd) {
        rc = frc < 0 ? frc : 0;
    } else {
        rc = ws->err ? ws->err : frc;
    }
    if (ws->owns) {
        /* Inside the close timeout: the close's flush must not wait for a
         * peer that does not read (up to the stream's write timeout). */
        int crc = tide_stream_close(ws->s);
        if (rc >= 0 && crc < 0 && crc != -ECONNRESET && crc != -EPIPE)
            rc = crc;
    }
    if (timed)
        tide_timeout_end(&to);
    tide_shield_end(&shield);
    ws_free(ws);
    if (bad)
        return bad;
    return rc < 0 ? rc : 0;
}

int tide_ws_close_code(const tide_ws *ws)
{
    return ws ? ws->close_code : 0;
}

const char *tide_ws_close_reason(const tide_ws *ws)
{
    return ws ? ws->close_reason : "";
}

const char *tide_ws_subprotocol(const tide_ws *ws)
{
    return ws ? ws->subprotocol : NULL;
}

tide_stream *tide_ws_stream(const tide_ws *ws)
{
    return ws ? ws->s : NULL;
}

/* ---------------------------------------------------------- handshakes */

static char *dup_n(const char *p, size_t n)
{
    char *d = (char *)tide__malloc(n + 1);
    if (d) {
        memcpy(d, p, n);
        d[n] = 0;
    }
    return d;
}

/* The first of the client's offered subprotocols that ours names. */
static int pick_subprotocol(const tide_http_request *req, const char *ours, char **out)
{
    *out = NULL;
    if (!ours)
        return 0;
    const tide_http_header *h = req->headers;
    size_t n = req->num_headers;
    for (ssize_t i = tide_http_header_find(h, n, 0, "Sec-WebSocket-Protocol"); i >= 0;
         i = tide_http_header_find(h, n, (size_t)i + 1, "Sec-WebSocket-Protocol")) {
        const char *p = h[i].value, *end = p + h[i].value_len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            const char *e = p;
            while (e < end && *e != ',')
                e++;
            const char *t = e;
            while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
                t--;
            if (t > p && tide__ws_list_has_exact(ours, p, (size_t)(t - p))) {
                *out = dup_n(p, (size_t)(t - p));
                return *out ? 0 : -ENOMEM;
            }
            p = e;
        }
    }
    return 0;
}

int tide_ws_accept(tide_stream *s, const tide_http_request *req, const tide_ws_opts *o,
                   tide_ws **out)
{
    if (!s || !req || !out || opts_check(o) < 0)
        return -EINVAL;
    *out = NULL;
    if (!tide_current_task())
        return -EPERM;
    int status;
    const char *why;
    char buf[512];
    if (tide_ws_check_request(req, &status, &why) < 0) {
        int n = snprintf(buf, sizeof buf,
                         "HTTP/1.1 %d %s\r\nConnection: close\r\n%s"
                         "Content-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s\n",
                         status, tide_http_reason(status),
                         status == 426 ? "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                                       : status == 405 ? "Allow: GET\r\n" : "",
                         strlen(why) + 1, why);
        tide_stream_write(s, buf, (size_t)n);
        tide_stream_flush(s);
        return -EPROTO;
    }
    size_t klen;
    const char *key = tide_http_header_get(req->headers, req->num_headers, "Sec-WebSocket-Key",
                                           &klen);
    char accept[32];
    tide_ws_accept_key(key, klen, accept);
    tide_ws *ws = ws_new(s, 1, o);
    if (!ws)
        return -ENOMEM;
    int rc = pick_subprotocol(req, o ? o->subprotocols : NULL, &ws->subprotocol);
    if (rc < 0)
        goto fail;
    int n = snprintf(buf, sizeof buf,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n",
                     accept);
    struct iovec iov[4] = {{buf, (size_t)n}, {NULL, 0}, {NULL, 0}, {(void *)"\r\n", 2}};
    int cnt = 2;
    if (ws->subprotocol) {
        iov[1].iov_base = (void *)"Sec-WebSocket-Protocol: ";
        iov[1].iov_len = 24;
        iov[2].iov_base = ws->subprotocol;
        iov[2].iov_len = strlen(ws->subprotocol);
        iov[3].iov_base = (void *)"\r\n\r\n";
        iov[3].iov_len = 4;
        cnt = 4;
    } else {
        iov[1] = iov[3];
    }
    ssize_t w = tide_stream_writev(s, iov, cnt);
    if (w < 0) {
        rc = (int)w;
        goto fail;
    }
    *out = ws;
    return 0;
fail:
    ws_free(ws);
    return rc;
}

int tide_ws_upgrade(tide_http_exchange *x, const tide_ws_opts *o, tide_ws **out)
{
    if (out)
        *out = NULL;
    if (!x || !out || opts_check(o) < 0)
        return -EINVAL;
    if (!tide_current_task())
        return -EPERM;
    if (!tide_http_exchange_stream(x))
        return -EBADF;
    const tide_http_request *req = tide_http_exchange_request(x);
    int status = 0;
    const char *why = NULL;
    if (tide_ws_check_request(req, &status, &why) == 0 && req->body != TIDE_HTTP_BODY_NONE) {
        status = 400;
        why = "the opening handshake has a body";
    }
    if (status) {
        static const tide_http_header h426[] = {
            {"Content-Type", 12, "text/plain", 10},
            {"Upgrade", 7, "websocket", 9},
            {"Sec-WebSocket-Version", 21, "13", 2}};
        static const tide_http_header h405[] = {{"Content-Type", 12, "text/plain", 10},
                                                {"Allow", 5, "GET", 3}};
        char body[128];
        int n = snprintf(body, sizeof body, "%s\n", why);
        int rc = status == 426   ? tide_http_respond(x, 426, h426, 3, body, (size_t)n)
                 : status == 405 ? tide_http_respond(x, 405, h405, 2, body, (size_t)n)
                                 : tide_http_respond(x, status, h426, 1, body, (size_t)n);
        return rc < 0 && rc != -EPIPE && rc != -ECONNRESET ? rc : -EPROTO;
    }
    if (tide__http_responded(x))
        return -EALREADY;
    tide_stream *s = tide_http_takeover(x);
    if (!s)
        return -ENOMEM; /* the read-ahead could not be put back */
    int rc = tide_ws_accept(s, req, o, out);
    if (rc < 0) {
        (void)tide_stream_close(s);
        return rc;
    }
    (*out)->owns = 1;
    return 0;
}

#define WS_HEAD_MAX (16 * 1024)

static int handshake(tide_stream *s, const char *host, const char *resource,
                     const tide_ws_opts *o, tide_ws **out)
{
    uint8_t nonce[16];
    char key[32];
    fill_random(nonce, sizeof nonce);
    tide__ws_base64(nonce, sizeof nonce, key);
    const char *proto = o ? o->subprotocols : NULL;
    const char *origin = o ? o->origin : NULL;
    const char *extra = o ? o->extra_headers : NULL;
    size_t need = 256 + strlen(host) + strlen(resource) + (proto ? strlen(proto) : 0) +
                  (origin ? strlen(origin) : 0) + (extra ? strlen(extra) : 0);
    if (need < WS_HEAD_MAX)
        need = WS_HEAD_MAX;
    char *buf = (char *)tide__malloc(need);
    if (!buf)
        return -ENOMEM;
    int n = snprintf(buf, need,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s%s%s%s%s%s%s\r\n",
                     resource, host, key, proto ? "Sec-WebSocket-Protocol: " : "",
                     proto ? proto : "", proto ? "\r\n" : "", origin ? "Origin: " : "",
                     origin ? origin : "", origin ? "\r\n" : "", extra ? extra : "");
    int rc;
    ssize_t w = tide_stream_write(s, buf, (size_t)n);
    if (w < 0) {
        rc = (int)w;
        goto out;
    }
    ssize_t hl = tide_stream_readuntil(s, "\r\n\r\n", 4, buf, WS_HEAD_MAX);
    if (hl < 0) {
        rc = hl == -EMSGSIZE || hl == -ENOBUFS ? -EPROTO : (int)hl;
        goto out;
    }
    tide_http_header hdrs[64];
    tide_http_response resp;
    tide_http_response_init(&resp, hdrs, 64);
    if (tide_http_parse_response(buf, (size_t)hl, &resp) != hl) {
        rc = hl == 0 ? -ECONNRESET : -EPROTO;
        goto out;
    }
    const char *why;
    rc = tide_ws_check_response(&resp, key, proto, &why);
    if (rc < 0)
        goto out;
    tide_ws *ws = ws_new(s, 0, o);
    if (!ws) {
        rc = -ENOMEM;
        goto out;
    }
    size_t plen;
    const char *p = tide_http_header_get(hdrs, resp.num_headers, "Sec-WebSocket-Protocol", &plen);
    if (p && !(ws->subprotocol = dup_n(p, plen))) {
        ws_free(ws);
        rc = -ENOMEM;
        goto out;
    }
    *out = ws;
out:
    tide__free(buf);
    return rc;
}

/* Host field values and resources must not break the request apart. */
static int clean(const char *p)
{
    for (; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return 0;
    return 1;
}

int tide_ws_handshake(tide_stream *s, const char *host, const char *resource,
                      const tide_ws_opts *o, tide_ws **out)
{
    if (!s || !host || !resource || !out || opts_check(o) < 0 || !*host || resource[0] != '/' ||
        !clean(host) || !clean(resource))
        return -EINVAL;
    *out = NULL;
    if (!tide_current_task())
        return -EPERM;
    tide_scope sc;
    int rc = tide_timeout_begin(&sc, o && o->handshake_timeout_ms ? o->handshake_timeout_ms
                                                                  : 10000);
    if (rc < 0)
        return rc;
    rc = handshake(s, host, resource, o, out);
    tide_timeout_end(&sc);
    if (rc < 0)
        return rc;
    (*out)->owns = 1;
    return 0;
}

int tide_ws_connect(const char *url, const tide_ws_opts *o, tide_ws **out)
{
    if (!url || !out || opts_check(o) < 0)
        return -EINVAL;
    *out = NULL;
    int tls;
    const char *p;
    if (strncmp(url, "ws://", 5) == 0) {
        tls = 0;
        p = url + 5;
    } else if (strncmp(url, "wss://", 6) == 0) {
        tls = 1;
        p = url + 6;
    } else {
        return -EPROTONOSUPPORT;
    }
#ifndef TIDE__HAVE_TLS
    if (tls)
        return -EPROTONOSUPPORT;
#endif
    if (!tide_current_task())
        return -EPERM;
    /* authority: host, [v6] or host:port */
    const char *auth_end = p + strcspn(p, "/?#");
    if (*auth_end == '#' || strchr(p, '#'))
        return -EINVAL; /* fragments are not allowed in WebSocket URIs */
    char host[256];
    const char *hs = p, *he;
    const char *portp = NULL;
    if (*p == '[') {
        he = memchr(p, ']', (size_t)(auth_end - p));
        if (!he)
            return -EINVAL;
        hs = p + 1;
        if (he + 1 < auth_end) {
            if (he[1] != ':')
                return -EINVAL;
            portp = he + 2;
        }
    } else {
        he = memchr(p, ':', (size_t)(auth_end - p));
        if (he)
            portp = he + 1;
        else
            he = auth_end;
    }
    size_t hlen = (size_t)(he - hs);
    if (hlen == 0 || hlen >= sizeof host || memchr(hs, '@', hlen))
        return -EINVAL;
    memcpy(host, hs, hlen);
    host[hlen] = 0;
    int port = tls ? 443 : 80;
    if (portp) {
        if (portp == auth_end)
            return -EINVAL;
        port = 0;
        for (const char *q = portp; q < auth_end; q++) {
            if (*q < '0' || *q > '9' || port > 65535)
                return -EINVAL;
            port = port * 10 + (*q - '0');
        }
        if (port < 1 || port > 65535)
            return -EINVAL;
    }
    char authority[300];
    snprintf(authority, sizeof authority, "%.*s", (int)(auth_end - p), p);
    char *resource = NULL;
    if (*auth_end == '/') {
        resource = dup_n(auth_end, strlen(auth_end));
    } else {
        size_t rl = strlen(auth_end);
        resource = (char *)tide__malloc(rl + 2);
        if (resource) {
            resource[0] = '/';
            memcpy(resource + 1, auth_end, rl + 1);
        }
    }
    if (!resource)
        return -ENOMEM;
    if (!clean(host) || !clean(resource)) {
        tide__free(resource);
        return -EINVAL;
    }
    tide_scope sc;
    int rc = tide_timeout_begin(&sc, o && o->handshake_timeout_ms ? o->handshake_timeout_ms
                                                                  : 10000);
    if (rc < 0) {
        tide__free(resource);
        return rc;
    }
    tide_stream *s = NULL;
#ifdef TIDE__HAVE_TLS
    if (tls)
        rc = tide_open_tls_connection(host, port, (const tide_tls_opts *)(o ? o->tls : NULL), &s);
    else
#endif
        rc = tide_open_connection(host, port, &s);
    if (rc >= 0) {
        rc = handshake(s, authority, resource, o, out);
        if (rc < 0) {
            tide_stream_close(s);
        } else {
            (*out)->owns = 1;
        }
    }
    tide_timeout_end(&sc);
    tide__free(resource);
    return rc < 0 ? rc : 0;
}
