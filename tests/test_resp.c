/*
 * The RESP2 parser (tide/resp.h): every type, nesting, pipelined messages,
 * incremental input (every prefix of a valid message is "incomplete", never
 * an error), the limits, malformed input, inline commands, formatting, bad
 * arguments.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tide.h"

static ssize_t parse(const char *s, tide_resp_value *v, size_t cap, size_t *nv)
{
    return tide_resp_parse(s, strlen(s), v, cap, nv, NULL, NULL);
}

static void test_scalars(void **state)
{
    tide_resp_value v[4];
    size_t nv = 0;
    (void)state;
    assert_int_equal(parse("+OK\r\n", v, 4, &nv), 5);
    assert_int_equal(nv, 1);
    assert_int_equal(v[0].type, TIDE_RESP_SIMPLE);
    assert_int_equal(v[0].len, 2);
    assert_memory_equal(v[0].str, "OK", 2);
    assert_int_equal(parse("-ERR bad\r\n", v, 4, &nv), 10);
    assert_int_equal(v[0].type, TIDE_RESP_ERROR);
    assert_memory_equal(v[0].str, "ERR bad", 7);
    assert_int_equal(parse(":-42\r\n", v, 4, &nv), 6);
    assert_int_equal(v[0].type, TIDE_RESP_INTEGER);
    assert_int_equal(v[0].integer, -42);
    assert_int_equal(parse(":9223372036854775807\r\n", v, 4, &nv), 22);
    assert_true(v[0].integer == INT64_MAX);
    assert_int_equal(parse(":-9223372036854775808\r\n", v, 4, &nv), 23);
    assert_true(v[0].integer == INT64_MIN);
    assert_int_equal(parse(":9223372036854775808\r\n", v, 4, &nv), -EPROTO);
    assert_int_equal(parse("$5\r\nhe\r\no\r\n", v, 4, &nv), 11); /* binary safe */
    assert_int_equal(v[0].type, TIDE_RESP_BULK);
    assert_int_equal(v[0].len, 5);
    assert_memory_equal(v[0].str, "he\r\no", 5);
    assert_int_equal(parse("$0\r\n\r\n", v, 4, &nv), 6);
    assert_int_equal(v[0].len, 0);
    assert_int_equal(parse("$-1\r\n", v, 4, &nv), 5);
    assert_int_equal(v[0].type, TIDE_RESP_NIL);
    assert_int_equal(parse("*-1\r\n", v, 4, &nv), 5);
    assert_int_equal(v[0].type, TIDE_RESP_NIL_ARRAY);
}

static void test_arrays(void **state)
{
    tide_resp_value v[16];
    size_t nv = 0;
    const char *msg = "*3\r\n:1\r\n*2\r\n$1\r\na\r\n*0\r\n$-1\r\n+tail\r\n";
    (void)state;
    /* One message: the trailing +tail is the next one. */
    assert_int_equal(parse(msg, v, 16, &nv), (ssize_t)strlen(msg) - 7);
    assert_int_equal(nv, 6);
    assert_int_equal(v[0].type, TIDE_RESP_ARRAY);
    assert_int_equal(v[0].n, 3);
    assert_int_equal(v[1].integer, 1);
    assert_int_equal(v[2].n, 2);
    assert_memory_equal(v[3].str, "a", 1);
    assert_int_equal(v[4].type, TIDE_RESP_ARRAY);
    assert_int_equal(v[4].n, 0);
    assert_int_equal(v[5].type, TIDE_RESP_NIL);
    /* Too few value slots. */
    assert_int_equal(parse(msg, v, 5, &nv), -EMSGSIZE);
}

static void test_incremental(void **state)
{
    const char *msg = "*2\r\n$3\r\nfoo\r\n*1\r\n:77\r\n";
    size_t len = strlen(msg), i;
    tide_resp_value v[8];
    (void)state;
    for (i = 0; i < len; i++) {
        size_t need = 0;
        assert_int_equal(tide_resp_parse(msg, i, v, 8, NULL, NULL, &need), 0);
        assert_true(need > i && need <= len);
    }
    assert_int_equal(tide_resp_parse(msg, len, v, 8, NULL, NULL, NULL), (ssize_t)len);
    /* A large bulk tells how much it needs in one go. */
    {
        size_t need = 0;
        assert_int_equal(tide_resp_parse("$100000\r\nab", 11, v, 8, NULL, NULL, &need), 0);
        assert_int_equal(need, 9 + 100000 + 2);
    }
}

static void test_malformed(void **state)
{
    tide_resp_value v[8];
    size_t nv;
    (void)state;
    assert_int_equal(parse("?x\r\n", v, 8, &nv), -EPROTO);
    assert_int_equal(parse("+a\nb\r\n", v, 8, &nv), -EPROTO);  /* bare LF */
    assert_int_equal(parse("+ab\rc\r\n", v, 8, &nv), -EPROTO); /* bare CR */
    assert_int_equal(parse("$x\r\n", v, 8, &nv), -EPROTO);
    assert_int_equal(parse("$-2\r\n", v, 8, &nv), -EPROTO);
    assert_int_equal(parse("$\r\n", v, 8, &nv), -EPROTO);
    assert_int_equal(parse("$3\r\nabcd\r\n", v, 8, &nv), -EPROTO); /* no CRLF after the body */
    assert_int_equal(parse("*1x\r\n", v, 8, &nv), -EPROTO);
    assert_int_equal(parse(":1.5\r\n", v, 8, &nv), -EPROTO);
    assert_int_equal(parse(":\r\n", v, 8, &nv), -EPROTO);
}

static void test_limits(void **state)
{
    tide_resp_limits l;
    tide_resp_value v[64];
    char big[200];
    size_t need;
    (void)state;
    tide_resp_limits_init(&l);
    l.max_bulk = 10;
    l.max_elements = 3;
    l.max_depth = 2;
    l.max_line = 16;
    assert_int_equal(tide_resp_parse("$11\r\n", 5, v, 64, NULL, &l, NULL), -EMSGSIZE);
    assert_int_equal(tide_resp_parse("$10\r\n", 5, v, 64, NULL, &l, &need), 0);
    assert_int_equal(tide_resp_parse("*4\r\n", 4, v, 64, NULL, &l, NULL), -EMSGSIZE);
    assert_int_equal(tide_resp_parse("*1\r\n*1\r\n:1\r\n", 12, v, 64, NULL, &l, NULL), 12);
    assert_int_equal(tide_resp_parse("*1\r\n*1\r\n*1\r\n", 12, v, 64, NULL, &l, NULL), -EMSGSIZE);
    /* A line without CRLF longer than max_line is refused before it ends. */
    memset(big, 'a', sizeof big);
    big[0] = '+';
    assert_int_equal(tide_resp_parse(big, 17, v, 64, NULL, &l, NULL), 0);
    assert_int_equal(tide_resp_parse(big, 18, v, 64, NULL, &l, NULL), -EMSGSIZE);
    /* Depth above the hard limit is clamped, not an overflow. */
    l.max_depth = 1000;
    {
        char deep[4 * 70 + 8];
        size_t n = 0;
        for (int i = 0; i < 70; i++) {
            memcpy(deep + n, "*1\r\n", 4);
            n += 4;
        }
        memcpy(deep + n, ":1\r\n", 4);
        n += 4;
        assert_int_equal(tide_resp_parse(deep, n, v, 64, NULL, &l, NULL), -EMSGSIZE);
    }
}

/* Length lines ("*N", "$N") have a fast path (digits up to CRLF, at most
 * 18 of them, within max_line); the lines at its edges get the answers of
 * the general one: 18 and 19 digits, overflow, a sign, a bare CR, an
 * incomplete line, a line longer than max_line, leading zeros. */
static void test_length_lines(void **state)
{
    tide_resp_limits l;
    tide_resp_value v[4];
    const char *argv[4];
    size_t argl[4], argc, need = 0;
    (void)state;
    tide_resp_limits_init(&l);
    /* 18 and 19 digits: numbers, refused by max_bulk (512 MiB), not errors
     * of the syntax; 20 digits and INT64_MAX + 1: -EPROTO. */
    assert_int_equal(tide_resp_parse("$999999999999999999\r\n", 22, v, 4, NULL, &l, NULL),
                     -EMSGSIZE);
    assert_int_equal(tide_resp_parse("$9223372036854775807\r\n", 23, v, 4, NULL, &l, NULL),
                     -EMSGSIZE);
    assert_int_equal(tide_resp_parse("$9223372036854775808\r\n", 23, v, 4, NULL, &l, NULL),
                     -EPROTO);
    assert_int_equal(tide_resp_parse("$99999999999999999999\r\n", 24, v, 4, NULL, &l, NULL),
                     -EPROTO);
    /* Leading zeros are digits like any other. */
    assert_int_equal(tide_resp_parse("$0003\r\nabc\r\n", 12, v, 4, NULL, &l, NULL), 12);
    assert_int_equal(v[0].len, 3);
    /* A CR without its LF yet: incomplete; with another byte: -EPROTO. */
    assert_int_equal(tide_resp_parse("$3\r", 3, v, 4, NULL, &l, &need), 0);
    assert_int_equal(need, 4);
    assert_int_equal(tide_resp_parse("$3\rx", 4, v, 4, NULL, &l, NULL), -EPROTO);
    assert_int_equal(tide_resp_parse_command("*1\r", 3, argv, argl, 4, &argc, &l, &need), 0);
    assert_int_equal(tide_resp_parse_command("*1\rx", 4, argv, argl, 4, &argc, &l, NULL),
                     -EPROTO);
    assert_int_equal(tide_resp_parse_command("*+1\r\n", 5, argv, argl, 4, &argc, &l, NULL),
                     -EPROTO);
    assert_int_equal(tide_resp_parse_command("*1\n", 3, argv, argl, 4, &argc, &l, NULL),
                     -EPROTO);
    /* Digits longer than max_line: -EMSGSIZE, as any line. */
    l.max_line = 2;
    assert_int_equal(tide_resp_parse_command("*12\r\n", 5, argv, argl, 4, &argc, &l, NULL),
                     -EMSGSIZE);
    assert_int_equal(tide_resp_parse_command("*1\r\n$123\r\n", 11, argv, argl, 4, &argc, &l,
                                             NULL), -EMSGSIZE);
    assert_int_equal(tide_resp_parse_command("*1\r\n$10\r\n0123456789\r\n", 21, argv, argl, 4,
                                             &argc, &l, NULL), 21);
    assert_int_equal(argc, 1);
    assert_int_equal(argl[0], 10);
}

static void test_command(void **state)
{
    const char *argv[8];
    size_t argl[8], argc = 99, need;
    const char *pipe = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nvv\r\nPING\r\n\r\n  get  k \t\n";
    size_t len = strlen(pipe);
    ssize_t r;
    (void)state;
    r = tide_resp_parse_command(pipe, len, argv, argl, 8, &argc, NULL, NULL);
    assert_int_equal(r, 28);
    assert_int_equal(argc, 3);
    assert_memory_equal(argv[0], "SET", 3);
    assert_int_equal(argl[2], 2);
    r = tide_resp_parse_command(pipe + 28, len - 28, argv, argl, 8, &argc, NULL, NULL);
    assert_int_equal(r, 6); /* inline PING\r\n */
    assert_int_equal(argc, 1);
    assert_memory_equal(argv[0], "PING", 4);
    r = tide_resp_parse_command(pipe + 34, len - 34, argv, argl, 8, &argc, NULL, NULL);
    assert_int_equal(r, 2); /* an empty line */
    assert_int_equal(argc, 0);
    r = tide_resp_parse_command(pipe + 36, len - 36, argv, argl, 8, &argc, NULL, NULL);
    assert_int_equal(r, (ssize_t)(len - 36));
    assert_int_equal(argc, 2);
    assert_int_equal(argl[0], 3);
    assert_int_equal(argl[1], 1);
    /* Incomplete, too many args, not bulk, null bulk. */
    assert_int_equal(tide_resp_parse_command("*2\r\n$3\r\nGET\r\n", 13, argv, argl, 8, &argc,
                                             NULL, &need), 0);
    assert_int_equal(tide_resp_parse_command("*9\r\n", 4, argv, argl, 8, &argc, NULL, NULL),
                     -EMSGSIZE);
    assert_int_equal(tide_resp_parse_command("*1\r\n:1\r\n", 8, argv, argl, 8, &argc, NULL, NULL),
                     -EPROTO);
    assert_int_equal(tide_resp_parse_command("*1\r\n$-1\r\n", 9, argv, argl, 8, &argc, NULL,
                                             NULL), -EPROTO);
    assert_int_equal(tide_resp_parse_command("*0\r\n", 4, argv, argl, 8, &argc, NULL, NULL), 4);
    assert_int_equal(argc, 0);
    {
        /* An inline line past max_line. */
        tide_resp_limits l;
        char line[100];
        tide_resp_limits_init(&l);
        l.max_line = 50;
        memset(line, 'x', sizeof line);
        assert_int_equal(tide_resp_parse_command(line, 50, argv, argl, 8, &argc, &l, NULL), 0);
        assert_int_equal(tide_resp_parse_command(line, 51, argv, argl, 8, &argc, &l, NULL),
                         -EMSGSIZE);
    }
}

static void test_format_roundtrip(void **state)
{
    const char *argv[3] = {"SET", "key", "a\r\nb"};
    size_t argl[3] = {3, 3, 4};
    char buf[128];
    const char *pa[3];
    size_t pl[3], pc;
    ssize_t n;
    (void)state;
    n = tide_resp_format_command(NULL, 0, 3, argv, argl);
    assert_true(n > 0);
    assert_int_equal(tide_resp_format_command(buf, (size_t)n - 1, 3, argv, argl), n);
    assert_int_equal(tide_resp_format_command(buf, sizeof buf, 3, argv, argl), n);
    assert_int_equal(tide_resp_parse_command(buf, (size_t)n, pa, pl, 3, &pc, NULL, NULL), n);
    assert_int_equal(pc, 3);
    assert_memory_equal(pa[2], "a\r\nb", 4);
}

static void test_bad_args(void **state)
{
    tide_resp_value v[2];
    const char *argv[2];
    size_t argl[2], argc;
    (void)state;
    assert_int_equal(tide_resp_parse(NULL, 3, v, 2, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(tide_resp_parse("+a\r\n", 4, NULL, 2, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(tide_resp_parse("+a\r\n", 4, v, 0, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(tide_resp_parse_command(NULL, 1, argv, argl, 2, &argc, NULL, NULL), -EINVAL);
    assert_int_equal(tide_resp_parse_command("P\n", 2, argv, argl, 0, &argc, NULL, NULL), -EINVAL);
    assert_int_equal(tide_resp_parse_command("P\n", 2, argv, NULL, 2, &argc, NULL, NULL), -EINVAL);
    assert_int_equal(tide_resp_format_command(NULL, 0, 0, argv, argl), -EINVAL);
    argv[0] = NULL;
    argl[0] = 1;
    assert_int_equal(tide_resp_format_command(NULL, 0, 1, argv, argl), -EINVAL);
    tide_resp_limits_init(NULL); /* ignored */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),          cmocka_unit_test(test_arrays),
        cmocka_unit_test(test_incremental),      cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_limits),           cmocka_unit_test(test_command),
        cmocka_unit_test(test_format_roundtrip), cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_length_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
