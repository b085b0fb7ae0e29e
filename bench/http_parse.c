/*
 * HTTP/1.1 request-head parsing speed: a realistic ~700-byte browser
 * request head (Chrome asking for a page: client hints, a long Accept,
 * cookies), parsed again and again for about a second by:
 *
 *  - tide: tide_http_parse_request (every check of the strict parser);
 *  - naive: a reference written here, measured in the same run: memchr for
 *    each line end and for each ':', spaces trimmed, no validation at all
 *    (the "strchr per line" parser many programs start with);
 *  - memchr: one memchr over the head for a byte that is not in it, the
 *    speed of merely reading the bytes (a floor nobody reaches).
 *
 * Printed: GB/s (head bytes per second) and ns per head for each, and the
 * ratios tide/naive and tide/memchr (higher is better for tide).  Runs are
 * interleaved; each figure is the best of its repetitions.
 */
#include "bench.h"

#include <tide.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define REPS 5
#define SLICE_NS (200LL * 1000 * 1000) /* per repetition and parser: 5 x 0.2 s = 1 s */
#define MAXH 64

static const char head_src[] =
    "GET /wp-content/uploads/2010/03/hello-kitty-darth-vader-pink.jpg HTTP/1.1\r\n"
    "Host: www.kittyhell.com\r\n"
    "Connection: keep-alive\r\n"
    "sec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n"
    "sec-ch-ua-mobile: ?0\r\n"
    "sec-ch-ua-platform: \"Linux\"\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
    "image/webp,*/*;q=0.8\r\n"
    "Sec-Fetch-Site: none\r\n"
    "Sec-Fetch-Mode: navigate\r\n"
    "Sec-Fetch-User: ?1\r\n"
    "Sec-Fetch-Dest: document\r\n"
    "Accept-Encoding: gzip, deflate, br, zstd\r\n"
    "Accept-Language: en-US,en;q=0.9,fr;q=0.8\r\n"
    "Cookie: wp_ozh_wsa_visits=2; wp_ozh_wsa_visit_lasttime=1712345678\r\n"
    "\r\n";

/* The head is copied into a buffer of its own (not .rodata), as it would
 * sit in a read buffer. */
static char head[sizeof head_src];
static size_t head_len;
static volatile size_t sink;

/* ------------------------------------------------------------ parsers */

static size_t run_tide(long n)
{
    tide_http_header h[MAXH];
    tide_http_request r;
    size_t acc = 0;

    tide_http_request_init(&r, h, MAXH);
    for (long i = 0; i < n; i++) {
        ssize_t rc = tide_http_parse_request(head, head_len, &r);
        acc += (size_t)rc + r.num_headers;
    }
    return acc;
}

typedef struct nh {
    const char *name, *value;
    size_t name_len, value_len;
} nh;

/* The naive reference: request line split at spaces, then per line a
 * memchr for '\n' and one for ':'; no checks beyond finding them. */
static ssize_t naive_parse(const char *buf, size_t len, nh *h, size_t cap, size_t *n)
{
    const char *p = buf, *end = buf + len, *eol, *sp1, *sp2;

    *n = 0;
    eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol)
        return -EAGAIN;
    sp1 = memchr(p, ' ', (size_t)(eol - p));
    sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp2)
        return -EBADMSG;
    p = eol + 1;
    for (;;) {
        const char *colon, *v, *ve;
        eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            return -EAGAIN;
        if (eol == p || (eol == p + 1 && *p == '\r'))
            return eol + 1 - buf;
        colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || *n == cap)
            return -EBADMSG;
        v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t'))
            v++;
        ve = eol;
        while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        h[*n].name = p;
        h[*n].name_len = (size_t)(colon - p);
        h[*n].value = v;
        h[*n].value_len = (size_t)(ve - v);
        (*n)++;
        p = eol + 1;
    }
}

static size_t run_naive(long n)
{
    nh h[MAXH];
    size_t acc = 0, cnt;

    for (long i = 0; i < n; i++) {
        ssize_t rc = naive_parse(head, head_len, h, MAXH, &cnt);
        acc += (size_t)rc + cnt;
    }
    return acc;
}

static size_t run_memchr(long n)
{
    size_t acc = 0;

    for (long i = 0; i < n; i++) {
        const char *p = memchr(head, '\0', head_len);
        acc += p ? 1 : head_len;
        __asm__ __volatile__("" ::: "memory"); /* the buffer may have changed */
    }
    return acc;
}

/* ns per head: batches until a slice of time has passed. */
static double measure(size_t (*fn)(long))
{
    long batch = 1000, done = 0;
    int64_t t0 = bench_cpu_ns(), t;

    do {
        sink += fn(batch);
        done += batch;
        t = bench_cpu_ns();
    } while (t - t0 < SLICE_NS);
    return (double)(t - t0) / (double)done;
}

int main(void)
{
    const char *names[3] = {"tide", "naive", "memchr"};
    size_t (*fns[3])(long) = {run_tide, run_naive, run_memchr};
    double best[3] = {1e30, 1e30, 1e30};
    tide_http_header h[MAXH];
    tide_http_request r;
    nh nhh[MAXH];
    size_t cnt;
    ssize_t rc;

    memcpy(head, head_src, sizeof head_src);
    head_len = sizeof head_src - 1;

    /* Both parsers agree on the head before anything is timed. */
    tide_http_request_init(&r, h, MAXH);
    rc = tide_http_parse_request(head, head_len, &r);
    BENCH_CHECK(rc == (ssize_t)head_len, "tide parse: %zd (%s)", rc, r.error ? r.error : "");
    BENCH_CHECK(naive_parse(head, head_len, nhh, MAXH, &cnt) == (ssize_t)head_len, "naive");
    BENCH_CHECK(cnt == r.num_headers, "header count %zu vs %zu", cnt, r.num_headers);
    for (size_t i = 0; i < cnt; i++)
        BENCH_CHECK(nhh[i].value_len == h[i].value_len &&
                        !memcmp(nhh[i].value, h[i].value, h[i].value_len),
                    "header %zu differs", i);

    printf("request head: %zu bytes, %zu header fields\n", head_len, r.num_headers);
    for (int rep = 0; rep < REPS; rep++)
        for (int k = 0; k < 3; k++)
            best[k] = bench_min(best[k], measure(fns[k]));
    for (int k = 0; k < 3; k++)
        printf("%-7s %7.1f ns/head  %6.2f GB/s\n", names[k], best[k], (double)head_len / best[k]);
    printf("RATIO tide/naive  = %.2f (throughput; > 1: tide is faster)\n", best[1] / best[0]);
    printf("RATIO tide/memchr = %.2f (of reading the bytes once)\n", best[2] / best[0]);
    return 0;
}
