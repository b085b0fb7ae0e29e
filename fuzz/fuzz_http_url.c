/*
 * libFuzzer harness: tide_http_url_parse, and the resolution of a Location
 * reference against a base URL (what a redirect follows).
 *
 * Input: "BASE\nLOCATION" (no newline: the whole input is a URL to parse).
 * Checked: a parsed URL's host, port and path lie within the input (or are
 * the "/" default) and obey the rules; a relative reference resolved
 * against a valid base gives a URL that parses again, on the same origin.
 */
#include <tide.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_client_int.h"
#include "tide_int.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

static void check_url(const char *s, const tide_http_url *u)
{
    size_t n = strlen(s);
    CHECK(u->host >= s && u->host + u->host_len <= s + n && u->host_len > 0);
    CHECK(u->port >= 1 && u->port <= 65535);
    CHECK(u->path_len > 0);
    CHECK(u->path[0] == '/' || u->path[0] == '?');
    for (size_t i = 0; i < u->path_len; i++)
        CHECK((unsigned char)u->path[i] > 0x20 && (unsigned char)u->path[i] < 0x7f &&
              u->path[i] != '#');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1), *nl, *res;
    tide_http_url u, v;
    int err = 0;

    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    if (strlen(buf) != size) {
        free(buf);
        return 0; /* a NUL inside: not a C string */
    }
    nl = strchr(buf, '\n');
    if (nl)
        *nl = 0;
    if (tide_http_url_parse(buf, &u) == 0)
        check_url(buf, &u);
    else {
        free(buf);
        return 0;
    }
    if (nl) {
        const char *loc = nl + 1;
        size_t len = strlen(loc);
        res = tide__http_url_resolve(buf, loc, len, &err);
        if (res) {
            int absolute = strncmp(loc, "//", 2) == 0 || strchr(loc, ':') != NULL;
            if (!absolute) {
                CHECK(tide_http_url_parse(res, &v) == 0);
                check_url(res, &v);
                CHECK(v.tls == u.tls && v.port == u.port && v.host_len == u.host_len);
            }
            tide__free(res);
        } else {
            CHECK(err == -EBADMSG || err == -ENOMEM);
        }
    }
    free(buf);
    return 0;
}
