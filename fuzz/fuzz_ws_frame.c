/*
 * libFuzzer harness: the WebSocket frame codec and UTF-8 validator.
 *
 * The first byte picks who sent the frames (client, server, either) and a
 * split point; the rest is a run of frames, parsed one after the other as
 * a connection would (head, then payload).  Checked, besides the
 * sanitizers' own checks: a parse returns -EAGAIN, -EPROTO with a reason,
 * or a head of 2..14 bytes within the input whose re-encoding with
 * tide_ws_frame_head is byte-for-byte the input; every prefix of a head is
 * -EAGAIN; unmasking twice restores the payload, and unmasking in two
 * pieces equals unmasking at once; UTF-8 validation of a payload cut at the
 * split point gives the same verdict as all at once; close payloads give a
 * code the API promises.
 */
#include <tide.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

static void check_utf8(const uint8_t *p, size_t n, size_t cut)
{
    uint32_t a = 0, b = 0;
    int ra = tide_ws_utf8_feed(&a, p, n);
    if (cut > n)
        cut = n;
    int rb = tide_ws_utf8_feed(&b, p, cut);
    if (rb == 0)
        rb = tide_ws_utf8_feed(&b, p + cut, n - cut);
    CHECK(ra == 0 || ra == -EILSEQ);
    CHECK(ra == rb);
    if (ra == 0)
        CHECK(tide_ws_utf8_complete(a) == tide_ws_utf8_complete(b));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned flags = data[0] & 3;
    if (flags == 3)
        flags = 0;
    size_t cut = data[0] >> 2;
    const uint8_t *p = data + 1;
    size_t len = size - 1;
    check_utf8(p, len, cut);
    while (len) {
        tide_ws_frame f;
        const char *why = NULL;
        ssize_t hl = tide_ws_frame_parse(p, len, flags, &f, &why);
        if (hl == -EAGAIN)
            break;
        if (hl < 0) {
            CHECK(hl == -EPROTO && why);
            break;
        }
        CHECK(hl >= 2 && hl <= TIDE_WS_MAX_HEADER && (size_t)hl <= len);
        CHECK((size_t)hl == f.head_len);
        for (ssize_t i = 0; i < hl; i++)
            CHECK(tide_ws_frame_parse(p, (size_t)i, flags, &f, NULL) == -EAGAIN ||
                  tide_ws_frame_parse(p, (size_t)i, flags, &f, NULL) == -EPROTO);
        tide_ws_frame_parse(p, len, flags, &f, NULL);
        uint8_t head[TIDE_WS_MAX_HEADER];
        int n = tide_ws_frame_head(head, f.fin, f.opcode, f.len, f.masked ? f.mask : NULL);
        CHECK(n == hl && memcmp(head, p, (size_t)n) == 0);
        if (f.opcode >= 8)
            CHECK(f.fin && f.len <= TIDE_WS_MAX_CONTROL);
        p += hl;
        len -= (size_t)hl;
        size_t plen = f.len < len ? (size_t)f.len : len;
        uint8_t *pay = (uint8_t *)malloc(plen ? plen : 1);
        uint8_t *two = (uint8_t *)malloc(plen ? plen : 1);
        if (!pay || !two) {
            free(pay);
            free(two);
            return 0;
        }
        memcpy(pay, p, plen);
        memcpy(two, p, plen);
        tide_ws_mask(pay, plen, f.mask, 0);
        size_t c = cut < plen ? cut : plen;
        tide_ws_mask(two, c, f.mask, 0);
        tide_ws_mask(two + c, plen - c, f.mask, c);
        CHECK(memcmp(pay, two, plen) == 0);
        if (f.opcode == TIDE_WS_OP_CLOSE && plen <= TIDE_WS_MAX_CONTROL) {
            int code = tide_ws_close_parse(pay, plen);
            CHECK(code == -EPROTO || code == -EILSEQ || code == 1005 ||
                  (code >= 1000 && code <= 4999));
        }
        check_utf8(pay, plen, cut);
        tide_ws_mask(two, plen, f.mask, 0);
        CHECK(memcmp(two, p, plen) == 0);
        free(pay);
        free(two);
        p += plen;
        len -= plen;
    }
    return 0;
}
