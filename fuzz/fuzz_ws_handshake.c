/*
 * libFuzzer harness: the WebSocket opening handshake checks.
 *
 * The first byte says whether the rest is a request (even) or a response
 * (odd).  A request that tide_http_parse_request accepts goes through
 * tide_ws_check_request: it returns 0 (then the key is present and its
 * accept value is 28 base64 characters) or -EPROTO with a status of 400,
 * 405 or 426 and a reason.  A response goes through tide_ws_check_response
 * against a fixed key and offered subprotocols: 0 only for a 101 whose
 * Sec-WebSocket-Accept is the right one.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *buf = (char *)malloc(size);
    if (!buf)
        return 0;
    memcpy(buf, data + 1, size - 1);
    size_t len = size - 1;
    tide_http_header h[32];
    if ((data[0] & 1) == 0) {
        tide_http_request req;
        tide_http_request_init(&req, h, 32);
        if (tide_http_parse_request(buf, len, &req) > 0) {
            int status = 0;
            const char *why = NULL;
            int rc = tide_ws_check_request(&req, &status, &why);
            if (rc == 0) {
                size_t kl;
                const char *k = tide_http_header_get(h, req.num_headers, "Sec-WebSocket-Key", &kl);
                CHECK(k && kl == 24);
                char out[29];
                CHECK(tide_ws_accept_key(k, kl, out) == 28 && strlen(out) == 28);
            } else {
                CHECK(rc == -EPROTO && why && (status == 400 || status == 405 || status == 426));
            }
        }
    } else {
        tide_http_response resp;
        tide_http_response_init(&resp, h, 32);
        if (tide_http_parse_response(buf, len, &resp) > 0) {
            const char *why = NULL;
            const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
            int rc = tide_ws_check_response(&resp, key, (data[0] & 2) ? "chat, superchat" : NULL,
                                            &why);
            if (rc == 0) {
                size_t al;
                const char *a = tide_http_header_get(h, resp.num_headers, "Sec-WebSocket-Accept",
                                                     &al);
                CHECK(resp.status == 101 && a && al == 28 &&
                      memcmp(a, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", 28) == 0);
            } else {
                CHECK(rc == -EPROTO && why);
            }
        }
    }
    free(buf);
    return 0;
}
