/*
 * WebSocket codec (RFC 6455): frame heads, masking, UTF-8 validation, close
 * payloads and the opening handshake's checks.  Pure functions: no loop, no
 * allocation (the fuzzer calls them directly).
 */
#include "tide.h"
#include "tide/ws.h"

#include <errno.h>
#include <string.h>

#include "ws_int.h"

/* ------------------------------------------------------------- frames */

ssize_t tide_ws_frame_parse(const void *buf, size_t len, unsigned flags, tide_ws_frame *f,
                            const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    *why = NULL;
    if (!buf || !f)
        return -EINVAL;
    const uint8_t *p = (const uint8_t *)buf;
    if (len < 2)
        return -EAGAIN;
    int fin = p[0] >> 7, op = p[0] & 0x0f, masked = p[1] >> 7;
    uint64_t plen = p[1] & 0x7f;
    if (p[0] & 0x70) {
        *why = "reserved bits set";
        return -EPROTO;
    }
    if ((op > 2 && op < 8) || op > 10) {
        *why = "reserved opcode";
        return -EPROTO;
    }
    if (op >= 8) {
        if (!fin) {
            *why = "fragmented control frame";
            return -EPROTO;
        }
        if (plen > TIDE_WS_MAX_CONTROL) {
            *why = "control frame longer than 125 bytes";
            return -EPROTO;
        }
    }
    if ((flags & TIDE_WS_FROM_CLIENT) && !masked) {
        *why = "unmasked frame from a client";
        return -EPROTO;
    }
    if ((flags & TIDE_WS_FROM_SERVER) && masked) {
        *why = "masked frame from a server";
        return -EPROTO;
    }
    size_t need = 2;
    if (plen == 126)
        need += 2;
    else if (plen == 127)
        need += 8;
    if (masked)
        need += 4;
    if (len < need)
        return -EAGAIN;
    size_t at = 2;
    if (plen == 126) {
        plen = (uint64_t)p[2] << 8 | p[3];
        at = 4;
        if (plen < 126) {
            *why = "length not in its shortest form";
            return -EPROTO;
        }
    } else if (plen == 127) {
        plen = 0;
        for (int i = 0; i < 8; i++)
            plen = plen << 8 | p[2 + i];
        at = 10;
        if (plen >> 63) {
            *why = "length with the top bit set";
            return -EPROTO;
        }
        if (plen < 65536) {
            *why = "length not in its shortest form";
            return -EPROTO;
        }
    }
    f->fin = fin;
    f->opcode = op;
    f->masked = masked;
    if (masked)
        memcpy(f->mask, p + at, 4);
    else
        memset(f->mask, 0, 4);
    f->len = plen;
    f->head_len = need;
    return (ssize_t)need;
}

int tide_ws_frame_head(uint8_t *out, int fin, int opcode, uint64_t len, const uint8_t *mask)
{
    if (!out || opcode < 0 || opcode > 15 || (len >> 63))
        return -EINVAL;
    if (opcode >= 8 && (len > TIDE_WS_MAX_CONTROL || !fin))
        return -EINVAL;
    out[0] = (uint8_t)((fin ? 0x80 : 0) | opcode);
    uint8_t mbit = mask ? 0x80 : 0;
    int n;
    if (len < 126) {
        out[1] = (uint8_t)(mbit | len);
        n = 2;
    } else if (len < 65536) {
        out[1] = (uint8_t)(mbit | 126);
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        n = 4;
    } else {
        out[1] = (uint8_t)(mbit | 127);
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    if (mask) {
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

void tide_ws_mask(void *data, size_t len, const uint8_t *mask, uint64_t offset)
{
    if (!data || !mask || !len)
        return;
    uint8_t *p = (uint8_t *)data;
    unsigned ph = (unsigned)(offset & 3);
    /* Byte at a time up to an 8-byte boundary of the data, then words with
     * the key rotated to the phase reached. */
    while (len && ((uintptr_t)p & 7)) {
        *p++ ^= mask[ph];
        ph = (ph + 1) & 3;
        len--;
    }
    if (len >= 8) {
        uint8_t k8[8];
        for (int i = 0; i < 8; i++)
            k8[i] = mask[(ph + i) & 3];
        uint64_t k;
        memcpy(&k, k8, 8);
        while (len >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            w ^= k;
            memcpy(p, &w, 8);
            p += 8;
            len -= 8;
        }
    }
    while (len--) {
        *p++ ^= mask[ph];
        ph = (ph + 1) & 3;
    }
}

/* -------------------------------------------------------------- UTF-8 */

/* State: bits 0-1 the continuation bytes still expected, bits 8-15 the
 * lowest and bits 16-23 the highest value the next one may take (narrower
 * than 80..BF right after E0, ED, F0, F4). */
int tide_ws_utf8_feed(uint32_t *state, const void *data, size_t len)
{
    if (!state || (!data && len))
        return -EINVAL;
    const uint8_t *p = (const uint8_t *)data, *end = p + len;
    uint32_t st = *state;
    while (p < end) {
        if (st == 0) {
            /* ASCII runs eight bytes at a time. */
            while (end - p >= 8) {
                uint64_t w;
                memcpy(&w, p, 8);
                if (w & 0x8080808080808080ull)
                    break;
                p += 8;
            }
            if (p == end)
                break;
            uint8_t c = *p++;
            if (c < 0x80)
                continue;
            uint32_t lo = 0x80, hi = 0xbf, need;
            if (c >= 0xc2 && c <= 0xdf)
                need = 1;
            else if (c >= 0xe0 && c <= 0xef) {
                need = 2;
                if (c == 0xe0)
                    lo = 0xa0;
                else if (c == 0xed)
                    hi = 0x9f;
            } else if (c >= 0xf0 && c <= 0xf4) {
                need = 3;
                if (c == 0xf0)
                    lo = 0x90;
                else if (c == 0xf4)
                    hi = 0x8f;
            } else {
                *state = 0xffffffffu;
                return -EILSEQ;
            }
            st = need | lo << 8 | hi << 16;
        } else {
            if (st == 0xffffffffu)
                return -EILSEQ;
            uint8_t c = *p++;
            uint32_t lo = (st >> 8) & 0xff, hi = (st >> 16) & 0xff;
            if (c < lo || c > hi) {
                *state = 0xffffffffu;
                return -EILSEQ;
            }
            uint32_t need = (st & 3) - 1;
            st = need ? (need | 0x80u << 8 | 0xbfu << 16) : 0;
        }
    }
    *state = st;
    return st == 0xffffffffu ? -EILSEQ : 0;
}

int tide_ws_utf8_complete(uint32_t state)
{
    return state == 0;
}

int tide_ws_close_parse(const void *payload, size_t len)
{
    if ((!payload && len) || len > TIDE_WS_MAX_CONTROL)
        return -EINVAL;
    if (len == 0)
        return TIDE_WS_CLOSE_NO_STATUS;
    if (len == 1)
        return -EPROTO;
    const uint8_t *p = (const uint8_t *)payload;
    int code = p[0] << 8 | p[1];
    int ok = (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
             (code >= 3000 && code <= 4999);
    if (!ok)
        return -EPROTO;
    uint32_t st = 0;
    if (tide_ws_utf8_feed(&st, p + 2, len - 2) < 0 || !tide_ws_utf8_complete(st))
        return -EILSEQ;
    return code;
}

/* ---------------------------------------------------- SHA-1 and base64 */

typedef struct sha1 {
    uint32_t h[5];
    uint8_t buf[64];
    size_t n;
    uint64_t total;
} sha1;

static uint32_t rol(uint32_t x, int n)
{
    return x << n | x >> (32 - n);
}

static void sha1_block(sha1 *s, const uint8_t *b)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 |
               (uint32_t)b[4 * i + 2] << 8 | b[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = s->h[0], bb = s->h[1], c = s->h[2], d = s->h[3], e = s->h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (bb & c) | (~bb & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = bb ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (bb & c) | (bb & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = bb ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol(bb, 30);
        bb = a;
        a = t;
    }
    s->h[0] += a;
    s->h[1] += bb;
    s->h[2] += c;
    s->h[3] += d;
    s->h[4] += e;
}

static void sha1_init(sha1 *s)
{
    static const uint32_t iv[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    memcpy(s->h, iv, sizeof iv);
    s->n = 0;
    s->total = 0;
}

static void sha1_update(sha1 *s, const void *data, size_t len)
{
    const uint8_t *p = (const uint8_t *)data;
    s->total += len;
    while (len) {
        size_t take = 64 - s->n;
        if (take > len)
            take = len;
        memcpy(s->buf + s->n, p, take);
        s->n += take;
        p += take;
        len -= take;
        if (s->n == 64) {
            sha1_block(s, s->buf);
            s->n = 0;
        }
    }
}

static void sha1_final(sha1 *s, uint8_t out[20])
{
    uint64_t bits = s->total * 8;
    uint8_t pad = 0x80, zero = 0;
    sha1_update(s, &pad, 1);
    while (s->n != 56)
        sha1_update(s, &zero, 1);
    uint8_t lb[8];
    for (int i = 0; i < 8; i++)
        lb[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha1_update(s, lb, 8);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->h[i];
    }
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Encodes n bytes; out gets 4*ceil(n/3) characters and a NUL. */
size_t tide__ws_base64(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64[v & 63] : '=';
    }
    out[o] = 0;
    return o;
}

/* Is s[0..n) the base64 form of exactly 16 bytes (22 characters + "==")? */
static int key_valid(const char *s, size_t n)
{
    if (n != 24 || s[22] != '=' || s[23] != '=')
        return 0;
    for (size_t i = 0; i < 22; i++)
        if (!strchr(b64, s[i]) || !s[i])
            return 0;
    /* The last character carries 2 bits of data: its low 4 bits are 0. */
    size_t v = (size_t)(strchr(b64, s[21]) - b64);
    return (v & 15) == 0;
}

int tide_ws_accept_key(const char *key, size_t key_len, char *out)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    if (!key || !out)
        return -EINVAL;
    sha1 s;
    uint8_t d[20];
    sha1_init(&s);
    sha1_update(&s, key, key_len);
    sha1_update(&s, guid, sizeof guid - 1);
    sha1_final(&s, d);
    return (int)tide__ws_base64(d, 20, out);
}

/* ---------------------------------------------------------- handshake */

static int eq_ci(const char *a, size_t n, const char *b)
{
    size_t m = strlen(b);
    if (n != m)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = (char)(x + 32);
        if (y >= 'A' && y <= 'Z')
            y = (char)(y + 32);
        if (x != y)
            return 0;
    }
    return 1;
}

int tide_ws_check_request(const tide_http_request *req, int *status, const char **why)
{
    int sdummy;
    const char *wdummy;
    if (!status)
        status = &sdummy;
    if (!why)
        why = &wdummy;
    *status = 0;
    *why = NULL;
    if (!req)
        return -EINVAL;
    const tide_http_header *h = req->headers;
    size_t n = req->num_headers, len;
    const char *v;
    if (req->method_id != TIDE_HTTP_GET) {
        *status = 405;
        *why = "the opening handshake must be a GET";
        return -EPROTO;
    }
    if (req->version_minor < 1 || !req->host) {
        *status = 400;
        *why = "the opening handshake needs HTTP/1.1 and a Host";
        return -EPROTO;
    }
    v = tide_http_header_get(h, n, "Upgrade", &len);
    if (!v || !tide_http_list_has(v, len, "websocket")) {
        *status = 426;
        *why = "no \"Upgrade: websocket\"";
        return -EPROTO;
    }
    v = tide_http_header_get(h, n, "Connection", &len);
    int conn_ok = 0;
    for (ssize_t i = tide_http_header_find(h, n, 0, "Connection"); i >= 0;
         i = tide_http_header_find(h, n, (size_t)i + 1, "Connection"))
        if (tide_http_list_has(h[i].value, h[i].value_len, "upgrade"))
            conn_ok = 1;
    if (!v || !conn_ok) {
        *status = 400;
        *why = "no \"Connection: upgrade\"";
        return -EPROTO;
    }
    v = tide_http_header_get(h, n, "Sec-WebSocket-Version", &len);
    if (!v || !eq_ci(v, len, "13")) {
        *status = 426;
        *why = "Sec-WebSocket-Version is not 13";
        return -EPROTO;
    }
    ssize_t ki = tide_http_header_find(h, n, 0, "Sec-WebSocket-Key");
    if (ki >= 0 && tide_http_header_find(h, n, (size_t)ki + 1, "Sec-WebSocket-Key") >= 0) {
        *status = 400;
        *why = "more than one Sec-WebSocket-Key";
        return -EPROTO;
    }
    v = tide_http_header_get(h, n, "Sec-WebSocket-Key", &len);
    if (!v || !key_valid(v, len)) {
        *status = 400;
        *why = "Sec-WebSocket-Key missing or not 16 bytes in base64";
        return -EPROTO;
    }
    return 0;
}

/* Is token among the comma-separated list (case-sensitive, as subprotocols)? */
int tide__ws_list_has_exact(const char *list, const char *tok, size_t tlen)
{
    const char *p = list;
    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - p) == tlen && tlen && memcmp(p, tok, tlen) == 0)
            return 1;
        p = e;
    }
    return 0;
}

int tide_ws_check_response(const tide_http_response *resp, const char *key, const char *offered,
                           const char **why)
{
    const char *wdummy;
    if (!why)
        why = &wdummy;
    *why = NULL;
    if (!resp || !key)
        return -EINVAL;
    const tide_http_header *h = resp->headers;
    size_t n = resp->num_headers, len;
    const char *v;
    if (resp->status != 101) {
        *why = "the server did not answer 101 Switching Protocols";
        return -EPROTO;
    }
    v = tide_http_header_get(h, n, "Upgrade", &len);
    if (!v || !eq_ci(v, len, "websocket")) {
        *why = "no \"Upgrade: websocket\" in the answer";
        return -EPROTO;
    }
    v = tide_http_header_get(h, n, "Connection", &len);
    if (!v || !tide_http_list_has(v, len, "upgrade")) {
        *why = "no \"Connection: upgrade\" in the answer";
        return -EPROTO;
    }
    char want[32];
    tide_ws_accept_key(key, strlen(key), want);
    v = tide_http_header_get(h, n, "Sec-WebSocket-Accept", &len);
    if (!v || len != 28 || memcmp(v, want, 28) != 0) {
        *why = "wrong or missing Sec-WebSocket-Accept";
        return -EPROTO;
    }
    if (tide_http_header_get(h, n, "Sec-WebSocket-Extensions", NULL)) {
        *why = "the server chose an extension that was not offered";
        return -EPROTO;
    }
    v = tide_http_header_get(h, n, "Sec-WebSocket-Protocol", &len);
    if (v && (!offered || !tide__ws_list_has_exact(offered, v, len) || memchr(v, ',', len))) {
        *why = "the server chose a subprotocol that was not offered";
        return -EPROTO;
    }
    return 0;
}
