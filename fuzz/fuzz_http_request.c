/*
 * libFuzzer harness: tide_http_parse_request on arbitrary bytes.
 *
 * The first byte picks the options (header cap, max_head, max_target); the
 * rest is the head.  Checked, besides the sanitizers' own checks: the
 * return value is -EAGAIN, -EBADMSG with a status the API promises, or a
 * length within the input ending in CRLF CRLF; every string returned lies in
 * the head and obeys the grammar (tokens, no control characters, trimmed
 * values); parsing is deterministic; and a prefix gives -EAGAIN or the same
 * result (the promise incremental callers rely on).
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

static const char tchars[] = "!#$%&'*+-.^_`|~";

static int is_tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr(tchars, c));
}

static void in_head(const char *p, size_t n, const char *buf, size_t len)
{
    CHECK(p && p >= buf && p + n <= buf + len);
}

static ssize_t parse(const char *buf, size_t len, unsigned opt, tide_http_request *r,
                     tide_http_header *h)
{
    static const size_t caps[4] = {64, 0, 3, 16};
    tide_http_request_init(r, caps[opt & 3] ? h : NULL, caps[opt & 3]); /* no array at all */
    r->max_head = opt & 4 ? 200 : 0;
    r->max_target = opt & 8 ? 20 : 0;
    return tide_http_parse_request(buf, len, r);
}

static void check_ok(const char *buf, ssize_t rc, const tide_http_request *r)
{
    size_t n = (size_t)rc;

    CHECK(n >= 16 && buf[n - 1] == '\n' && buf[n - 2] == '\r' && buf[n - 3] == '\n' &&
          buf[n - 4] == '\r');
    in_head(r->method, r->method_len, buf, n);
    CHECK(r->method_len > 0 && r->method_len <= TIDE_HTTP_MAX_METHOD);
    for (size_t i = 0; i < r->method_len; i++)
        CHECK(is_tchar((unsigned char)r->method[i]));
    CHECK(r->method_id == TIDE_HTTP_OTHER ||
          (strlen(tide_http_method_name(r->method_id)) == r->method_len &&
           !memcmp(tide_http_method_name(r->method_id), r->method, r->method_len)));
    in_head(r->target, r->target_len, buf, n);
    CHECK(r->target_len > 0 && r->target[-1] == ' ' && r->target[r->target_len] == ' ');
    for (size_t i = 0; i < r->target_len; i++) {
        unsigned char c = (unsigned char)r->target[i];
        CHECK(c > 0x20 && c < 0x7f && !strchr("\"#<>\\", c));
    }
    if (r->query) {
        in_head(r->query, r->query_len, r->target, r->target_len);
        CHECK(r->query[-1] == '?' && r->query + r->query_len == r->target + r->target_len);
    }
    switch (r->target_form) {
    case TIDE_HTTP_ORIGIN_FORM:
        CHECK(r->path == r->target && r->path[0] == '/' && !r->authority);
        break;
    case TIDE_HTTP_ABSOLUTE_FORM:
        in_head(r->authority, r->authority_len, r->target, r->target_len);
        CHECK(r->authority_len > 0 && !memchr(r->authority, '@', r->authority_len));
        CHECK(r->path_len > 0 && r->path[0] == '/');
        break;
    case TIDE_HTTP_AUTHORITY_FORM:
        CHECK(r->method_id == TIDE_HTTP_CONNECT && r->authority == r->target && !r->path);
        break;
    case TIDE_HTTP_ASTERISK_FORM:
        CHECK(r->method_id == TIDE_HTTP_OPTIONS && r->target_len == 1 && *r->target == '*');
        break;
    default:
        CHECK(0);
    }
    CHECK(r->version_minor == 0 || r->version_minor == 1);
    CHECK(r->num_headers <= r->header_cap);
    for (size_t i = 0; i < r->num_headers; i++) {
        const tide_http_header *f = &r->headers[i];
        in_head(f->name, f->name_len, buf, n);
        in_head(f->value, f->value_len, buf, n);
        CHECK(f->name_len > 0 && f->name[f->name_len] == ':');
        CHECK(f->name[-1] == '\n' && f->name[-2] == '\r');
        for (size_t k = 0; k < f->name_len; k++)
            CHECK(is_tchar((unsigned char)f->name[k]));
        for (size_t k = 0; k < f->value_len; k++) {
            unsigned char c = (unsigned char)f->value[k];
            CHECK((c >= 0x20 || c == '\t') && c != 0x7f);
        }
        if (f->value_len)
            CHECK(f->value[0] != ' ' && f->value[0] != '\t' && f->value[f->value_len - 1] != ' ' &&
                  f->value[f->value_len - 1] != '\t');
    }
    if (r->version_minor == 1)
        CHECK(r->host != NULL);
    if (r->host)
        CHECK(tide_http_header_get(r->headers, r->num_headers, "host", NULL) == r->host ||
              r->num_headers == r->header_cap);
    CHECK(r->body == TIDE_HTTP_BODY_NONE || r->body == TIDE_HTTP_BODY_LENGTH ||
          r->body == TIDE_HTTP_BODY_CHUNKED);
    if (r->body != TIDE_HTTP_BODY_LENGTH)
        CHECK(r->content_length == 0);
    if (r->body == TIDE_HTTP_BODY_CHUNKED)
        CHECK(r->version_minor == 1);
    CHECK(r->content_length <= INT64_MAX);
    CHECK(r->keep_alive == 0 || r->keep_alive == 1);
    CHECK(r->error == NULL && r->error_status == 0);
    if (r->version_minor == 0)
        CHECK(!r->upgrade && !r->expect_continue);
}

static void same(const tide_http_request *a, const tide_http_request *b)
{
    CHECK(a->method == b->method && a->method_len == b->method_len);
    CHECK(a->target == b->target && a->target_len == b->target_len);
    CHECK(a->path == b->path && a->path_len == b->path_len);
    CHECK(a->query == b->query && a->query_len == b->query_len);
    CHECK(a->authority == b->authority && a->authority_len == b->authority_len);
    CHECK(a->num_headers == b->num_headers && a->body == b->body);
    CHECK(a->content_length == b->content_length && a->keep_alive == b->keep_alive);
    CHECK(a->upgrade == b->upgrade && a->expect_continue == b->expect_continue);
    CHECK(a->host == b->host && a->host_len == b->host_len);
    for (size_t i = 0; i < a->num_headers; i++)
        CHECK(!memcmp(&a->headers[i], &b->headers[i], sizeof a->headers[i]));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tide_http_header h1[64], h2[64];
    tide_http_request r1, r2;
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
        CHECK((size_t)rc <= size);
        check_ok(buf, rc, &r1);
    } else if (rc == -EBADMSG) {
        CHECK(r1.error && *r1.error);
        CHECK(r1.error_status == 400 || r1.error_status == 414 || r1.error_status == 431 ||
              r1.error_status == 501 || r1.error_status == 505);
        CHECK(r1.keep_alive == 0);
    } else {
        CHECK(rc == -EAGAIN);
    }

    /* Deterministic. */
    rc2 = parse(buf, size, opt, &r2, h2);
    CHECK(rc2 == rc);
    if (rc >= 0)
        same(&r1, &r2);

    /* A prefix (at a point picked from the input): -EAGAIN or the same. */
    if (size == 0)
        return 0;
    cut = (size * (opt >> 4)) / 16;
    if (rc > 0 && (opt & 0x10))
        cut = (size_t)rc - 1;
    {
        char *p = malloc(cut ? cut : 1); /* exact size: over-reads are caught */
        memcpy(p, buf, cut);
        rc2 = parse(p, cut, opt, &r2, h2);
        if (rc > 0 && (size_t)rc <= cut) {
            CHECK(rc2 == rc);
        } else if (rc2 != -EAGAIN) {
            CHECK(rc2 == -EBADMSG && rc == -EBADMSG);
            CHECK(r2.error_status == r1.error_status && !strcmp(r2.error, r1.error));
        }
        free(p);
    }
    return 0;
}
