/*
 * libFuzzer harness: tide_http_parse_response on arbitrary bytes.
 *
 * The first byte picks the flags (HEAD, CONNECT), the header cap and
 * max_head; the rest is the head.  Checked: the result is -EAGAIN, -EBADMSG
 * (502 and a reason) or a length within the input ending in CRLF CRLF; the
 * status, reason, fields and framing obey the rules; a prefix gives -EAGAIN
 * or the same result.
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

static ssize_t parse(const char *buf, size_t len, unsigned opt, tide_http_response *r,
                     tide_http_header *h)
{
    static const size_t caps[4] = {64, 0, 2, 16};
    tide_http_response_init(r, caps[(opt >> 2) & 3] ? h : NULL, caps[(opt >> 2) & 3]);
    r->flags = opt & 3;
    r->max_head = opt & 0x10 ? 128 : 0;
    return tide_http_parse_response(buf, len, r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tide_http_header h1[64], h2[64];
    tide_http_response r1, r2;
    const char *buf;
    unsigned opt;
    ssize_t rc, rc2;
    size_t cut;

    if (size < 1)
        return 0;
    opt = data[0];
    buf = (const char *)data + 1;
    size--;

    rc = parse(buf, size, opt, &r1, h1);
    if (rc >= 0) {
        size_t n = (size_t)rc;
        CHECK(n <= size && n >= 16 && !memcmp(buf + n - 4, "\r\n\r\n", 4));
        CHECK(r1.status >= 100 && r1.status <= 599);
        CHECK(r1.version_minor == 0 || r1.version_minor == 1);
        CHECK(r1.reason && r1.reason >= buf && r1.reason + r1.reason_len <= buf + n);
        for (size_t i = 0; i < r1.reason_len; i++) {
            unsigned char c = (unsigned char)r1.reason[i];
            CHECK((c >= 0x20 || c == '\t') && c != 0x7f);
        }
        CHECK(r1.num_headers <= r1.header_cap);
        for (size_t i = 0; i < r1.num_headers; i++) {
            const tide_http_header *f = &h1[i];
            CHECK(f->name > buf && f->value >= f->name + f->name_len + 1 &&
                  f->value + f->value_len <= buf + n);
            CHECK(f->name_len > 0 && f->name[f->name_len] == ':');
            for (size_t k = 0; k < f->value_len; k++) {
                unsigned char c = (unsigned char)f->value[k];
                CHECK((c >= 0x20 || c == '\t') && c != 0x7f);
            }
        }
        if ((r1.flags & TIDE_HTTP_RESP_TO_HEAD) || r1.status < 200 || r1.status == 204 ||
            r1.status == 304)
            CHECK(r1.body == TIDE_HTTP_BODY_NONE);
        if (r1.body == TIDE_HTTP_BODY_UNTIL_CLOSE)
            CHECK(r1.keep_alive == 0);
        if (r1.body != TIDE_HTTP_BODY_LENGTH)
            CHECK(r1.content_length == 0);
        if (r1.upgrade)
            CHECK(r1.status == 101);
        CHECK(r1.error == NULL);
    } else if (rc == -EBADMSG) {
        CHECK(r1.error && *r1.error && r1.error_status == 502);
    } else {
        CHECK(rc == -EAGAIN);
    }

    rc2 = parse(buf, size, opt, &r2, h2);
    CHECK(rc2 == rc);

    if (size == 0)
        return 0;
    cut = (size * (opt >> 5)) / 8;
    if (rc > 0 && (opt & 0x20))
        cut = (size_t)rc - 1;
    {
        char *p = malloc(cut ? cut : 1);
        memcpy(p, buf, cut);
        rc2 = parse(p, cut, opt, &r2, h2);
        if (rc > 0 && (size_t)rc <= cut) {
            CHECK(rc2 == rc && r2.status == r1.status && r2.body == r1.body &&
                  r2.num_headers == r1.num_headers);
        } else if (rc2 != -EAGAIN) {
            CHECK(rc2 == -EBADMSG && rc == -EBADMSG && !strcmp(r2.error, r1.error));
        }
        free(p);
    }
    return 0;
}
