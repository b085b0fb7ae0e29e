/*
 * kv_server.c -- an in-memory key-value server that speaks RESP2, the
 * Redis protocol, well enough for redis-cli and redis-benchmark.
 *
 *   kv_server [-j LOOPS] [HOST] PORT    e.g.  kv_server 6380
 *                                             redis-cli -p 6380 set a 1
 *                                             redis-benchmark -p 6380 -t set,get -P 16
 *
 * HOST defaults to 127.0.0.1; PORT 0 picks a free port (the "listening on"
 * line tells which).  -j LOOPS runs that many loops on as many threads
 * (tide_multi_run, one loop per core; 0: one per allowed CPU), all
 * accepting on the same port (SO_REUSEPORT).  SIGINT or SIGTERM stops it
 * cleanly (exit status 0).
 *
 * Commands: PING [msg], ECHO, SET key value [NX|XX] [EX s|PX ms|KEEPTTL]
 * [GET], GET, GETSET, DEL, EXISTS, INCR, DECR, INCRBY, DECRBY, APPEND,
 * STRLEN, MSET, MGET, EXPIRE, PEXPIRE, TTL, PTTL, PERSIST, DBSIZE,
 * FLUSHDB, FLUSHALL, SELECT 0, CONFIG GET (what redis-benchmark asks),
 * COMMAND, CLIENT, INFO, QUIT.  Strings only: the list, set, hash and
 * sorted-set tests of redis-benchmark get "-ERR unknown command".
 *
 * How it works:
 *   - pipelining: each read takes what the kernel has (straight into the
 *     connection's buffer, see kv_main's stream limit); every complete
 *     command in it is parsed (tide_resp_parse_command, in place) and
 *     executed, and all the replies go out in one write;
 *   - the table is chained hashing with incremental rehash (two tables
 *     while it grows or shrinks; each operation moves a bucket or so), as
 *     Redis's dict;
 *   - expiry: a key past its deadline is deleted when it is touched (lazy),
 *     and a timer samples keys every 100 ms and deletes the expired ones it
 *     finds (periodic), going on while more than a quarter of the sample
 *     had expired, within 1 ms;
 *   - malformed input: limits on bulk length (64 MiB), arguments (1M), line
 *     length (64 KiB); a protocol error is answered with -ERR and the
 *     connection is closed, so no input makes the server grow past them;
 *     an idle connection stays (as Redis's timeout 0).
 *   - with several loops the table is shared under one mutex, taken once
 *     per batch of pipelined commands; INFO tells the loops (tide_loops)
 *     and how often a loop found the mutex taken (tide_lock_waits), which
 *     bench/kv_vs_redis.sh reports per request (docs/kv.md: why no shards).
 */
#include <tide.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#define MAX_BULK (64u * 1024 * 1024) /* longest key or value */
#define MAX_ARGS (1024 * 1024)       /* most arguments of one command */
#define IN_START 16384               /* a connection's first read buffer */
#define OUT_FLUSH (256 * 1024)       /* write out when this much is queued */
#define EXPIRE_PERIOD_MS 100
#define SAMPLE 20

/* ------------------------------------------------------------ the table */

typedef struct entry {
    struct entry *next;
    uint64_t hash;
    int64_t expire; /* ms on tide_now()'s clock; 0: none */
    char *val;
    size_t vlen, vcap;
    size_t klen;
    char key[];
} entry;

typedef struct table {
    entry **b;
    size_t size; /* power of two, or 0 */
    size_t used;
} table;

typedef struct dict {
    table t[2];
    ssize_t rehash; /* next bucket of t[0] to move, -1: not rehashing */
    size_t nvolatile; /* entries with an expiry */
    size_t cursor;    /* where the expiry sampling goes on */
} dict;

static dict db;
static pthread_mutex_t db_lock = PTHREAD_MUTEX_INITIALIZER;
static int shared; /* several loops: take db_lock */
static atomic_ulong lock_waits; /* times db_lock was found taken (INFO) */

/* Takes db_lock (with several loops), counting the times another loop held
 * it: the contention bench/kv_vs_redis.sh reports per request. */
static void db_lock_take(void)
{
    if (!shared)
        return;
    if (pthread_mutex_trylock(&db_lock) != 0) {
        atomic_fetch_add_explicit(&lock_waits, 1, memory_order_relaxed);
        pthread_mutex_lock(&db_lock);
    }
}

static void db_lock_give(void)
{
    if (shared)
        pthread_mutex_unlock(&db_lock);
}

static uint64_t hash_bytes(const char *p, size_t n)
{
    /* FNV-1a over 8-byte words, then a final mix: fast for short keys. */
    uint64_t h = 0xcbf29ce484222325ull ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    while (n--)
        h = (h ^ (unsigned char)*p++) * 0x100000001b3ull;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return h;
}

static int rehashing(void)
{
    return db.rehash >= 0;
}

/* Moves up to n buckets of t[0] into t[1] (visiting at most 10n empty
 * ones). */
static void rehash_step(size_t n)
{
    size_t empty = n * 10;

    while (n-- && rehashing()) {
        entry *e, *next;
        while (db.t[0].b[db.rehash] == NULL) {
            db.rehash++;
            if ((size_t)db.rehash == db.t[0].size)
                goto finished;
            if (--empty == 0)
                return;
        }
        for (e = db.t[0].b[db.rehash]; e; e = next) {
            size_t i = e->hash & (db.t[1].size - 1);
            next = e->next;
            e->next = db.t[1].b[i];
            db.t[1].b[i] = e;
            db.t[0].used--;
            db.t[1].used++;
        }
        db.t[0].b[db.rehash++] = NULL;
        if ((size_t)db.rehash == db.t[0].size)
            goto finished;
    }
    return;
finished:
    free(db.t[0].b);
    db.t[0] = db.t[1];
    memset(&db.t[1], 0, sizeof db.t[1]);
    db.rehash = -1;
}

/* Starts a rehash into a table of size slots (no-op if out of memory: the
 * chains just get longer). */
static void resize(size_t size)
{
    entry **b;

    if (rehashing() || size < 16)
        return;
    b = calloc(size, sizeof *b);
    if (!b)
        return;
    if (!db.t[0].size) {
        db.t[0].b = b;
        db.t[0].size = size;
        return;
    }
    db.t[1].b = b;
    db.t[1].size = size;
    db.t[1].used = 0;
    db.rehash = 0;
}

static size_t db_count(void)
{
    return db.t[0].used + db.t[1].used;
}

static void entry_free(entry *e)
{
    free(e->val);
    free(e);
}

/* The slot pointing at key k (in the table *ti), or NULL. */
static entry **find_slot(const char *k, size_t kl, uint64_t h, int *ti)
{
    int i;

    for (i = 0; i <= rehashing(); i++) {
        entry **pp;
        if (!db.t[i].size)
            continue;
        for (pp = &db.t[i].b[h & (db.t[i].size - 1)]; *pp; pp = &(*pp)->next)
            if ((*pp)->hash == h && (*pp)->klen == kl && memcmp((*pp)->key, k, kl) == 0) {
                *ti = i;
                return pp;
            }
    }
    return NULL;
}

/* Removes and frees the entry *pp of table ti. */
static void unlink_entry(entry **pp, int ti)
{
    entry *e = *pp;

    *pp = e->next;
    db.t[ti].used--;
    if (e->expire)
        db.nvolatile--;
    entry_free(e);
}

/* Looks k up; an expired entry is deleted (lazy expiry) and not found. */
static entry *lookup(const char *k, size_t kl, int64_t now)
{
    uint64_t h = hash_bytes(k, kl);
    entry **pp;
    int ti;

    if (rehashing())
        rehash_step(1);
    pp = find_slot(k, kl, h, &ti);
    if (!pp)
        return NULL;
    if ((*pp)->expire && (*pp)->expire <= now) {
        unlink_entry(pp, ti);
        return NULL;
    }
    return *pp;
}

static int del_key(const char *k, size_t kl, int64_t now)
{
    uint64_t h = hash_bytes(k, kl);
    entry **pp;
    int live, ti;

    if (rehashing())
        rehash_step(1);
    pp = find_slot(k, kl, h, &ti);
    if (!pp)
        return 0;
    live = !(*pp)->expire || (*pp)->expire > now;
    unlink_entry(pp, ti);
    if (!rehashing() && db.t[0].size > 16 && db_count() < db.t[0].size / 8)
        resize(db.t[0].size / 2);
    return live;
}

static int set_val(entry *e, const char *v, size_t vl)
{
    if (vl > e->vcap || (e->vcap > 64 && vl < e->vcap / 4)) {
        char *nv = malloc(vl ? vl : 1);
        if (!nv)
            return -ENOMEM;
        free(e->val);
        e->val = nv;
        e->vcap = vl ? vl : 1;
    }
    if (vl)
        memcpy(e->val, v, vl);
    e->vlen = vl;
    return 0;
}

static void set_expire(entry *e, int64_t at)
{
    if (!e->expire && at)
        db.nvolatile++;
    else if (e->expire && !at)
        db.nvolatile--;
    e->expire = at;
}

/* Inserts a new key (not present).  NULL: out of memory. */
static entry *insert(const char *k, size_t kl, const char *v, size_t vl)
{
    uint64_t h = hash_bytes(k, kl);
    entry *e = malloc(sizeof *e + kl);
    table *t;
    size_t i;

    if (!e)
        return NULL;
    memset(e, 0, sizeof *e);
    e->hash = h;
    e->klen = kl;
    memcpy(e->key, k, kl);
    if (set_val(e, v, vl) < 0) {
        free(e);
        return NULL;
    }
    if (!db.t[0].size)
        resize(16);
    if (!db.t[0].size) {
        entry_free(e);
        return NULL;
    }
    t = rehashing() ? &db.t[1] : &db.t[0];
    i = h & (t->size - 1);
    e->next = t->b[i];
    t->b[i] = e;
    t->used++;
    if (!rehashing() && db_count() >= db.t[0].size)
        resize(db.t[0].size * 2);
    return e;
}

static void db_flush(void)
{
    int i;
    for (i = 0; i < 2; i++) {
        size_t j;
        for (j = 0; j < db.t[i].size; j++) {
            entry *e, *n;
            for (e = db.t[i].b[j]; e; e = n) {
                n = e->next;
                entry_free(e);
            }
        }
        free(db.t[i].b);
    }
    memset(&db, 0, sizeof db);
    db.rehash = -1;
}

/* Periodic expiry: sample SAMPLE volatile keys from the cursor on (at most
 * 20 buckets per sampled key), delete the expired ones; again while more
 * than a quarter had expired, within 1 ms. */
static void expire_cycle(int64_t now)
{
    int64_t t0 = tide_now_ns();

    for (;;) {
        size_t seen = 0, expired = 0, visits = SAMPLE * 20;
        if (!db.nvolatile || !db.t[0].size)
            return;
        while (seen < SAMPLE && visits--) {
            int ti;
            for (ti = 0; ti <= rehashing(); ti++) {
                table *t = &db.t[ti];
                entry **pp;
                if (!t->size)
                    continue;
                pp = &t->b[db.cursor & (t->size - 1)];
                while (*pp) {
                    if ((*pp)->expire) {
                        seen++;
                        if ((*pp)->expire <= now) {
                            expired++;
                            unlink_entry(pp, ti);
                            continue;
                        }
                    }
                    pp = &(*pp)->next;
                }
            }
            db.cursor++;
        }
        if (expired * 4 <= seen || tide_now_ns() - t0 > 1000000)
            return;
    }
}

/* ------------------------------------------------------------- replies */

typedef struct conn {
    tide_stream *s;
    char *in;
    size_t inlen, incap, need;
    char *out;
    size_t outlen, outcap;
    const char **argv; /* the parsed command's arguments */
    size_t *argl;
    size_t argcap;
    int oom;   /* a reply could not be queued: close */
    int close; /* QUIT or a protocol error: close after the replies */
} conn;

static char *out_room(conn *c, size_t n)
{
    if (c->outcap - c->outlen < n) {
        size_t cap = c->outcap ? c->outcap : 16384;
        char *p;
        while (cap - c->outlen < n)
            cap *= 2;
        p = realloc(c->out, cap);
        if (!p) {
            c->oom = 1;
            return NULL;
        }
        c->out = p;
        c->outcap = cap;
    }
    return c->out + c->outlen;
}

static void out_raw(conn *c, const char *s, size_t n)
{
    char *p = out_room(c, n);
    if (p) {
        memcpy(p, s, n);
        c->outlen += n;
    }
}

#define OUT_LIT(c, lit) out_raw((c), lit, sizeof lit - 1)

static size_t fmt_i64(char *p, int64_t v)
{
    char tmp[24];
    size_t n = 0, i;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    i = 0;
    if (v < 0)
        p[i++] = '-';
    while (n)
        p[i++] = tmp[--n];
    return i;
}

static void out_head(conn *c, char type, int64_t v)
{
    char *p = out_room(c, 24);
    if (p) {
        size_t n = 1;
        p[0] = type;
        n += fmt_i64(p + 1, v);
        p[n++] = '\r';
        p[n++] = '\n';
        c->outlen += n;
    }
}

static void out_int(conn *c, int64_t v)
{
    out_head(c, ':', v);
}

static void out_bulk(conn *c, const char *s, size_t n)
{
    char *p = out_room(c, 24 + n);
    if (p) {
        size_t k = 1;
        p[0] = '$';
        k += fmt_i64(p + 1, (int64_t)n);
        p[k++] = '\r';
        p[k++] = '\n';
        memcpy(p + k, s, n);
        k += n;
        p[k++] = '\r';
        p[k++] = '\n';
        c->outlen += k;
    }
}

static void out_nil(conn *c)
{
    OUT_LIT(c, "$-1\r\n");
}

static void out_err(conn *c, const char *msg)
{
    out_raw(c, msg, strlen(msg));
    OUT_LIT(c, "\r\n");
}

/* ------------------------------------------------------------ commands */

typedef struct cmd {
    const char **argv;
    size_t *argl;
    size_t argc;
    int64_t now;
} cmd;

static int arg_is(const cmd *m, size_t i, const char *word)
{
    size_t n = strlen(word);
    return m->argl[i] == n && strncasecmp(m->argv[i], word, n) == 0;
}

/* A decimal int64 argument: 0 or -1. */
static int arg_int(const cmd *m, size_t i, int64_t *out)
{
    char buf[24];
    char *end;
    long long v;

    if (m->argl[i] == 0 || m->argl[i] > 20)
        return -1;
    memcpy(buf, m->argv[i], m->argl[i]);
    buf[m->argl[i]] = 0;
    errno = 0;
    v = strtoll(buf, &end, 10);
    if (errno || *end || buf[0] == ' ' || buf[0] == '+' || buf[0] == '\t')
        return -1;
    *out = v;
    return 0;
}

static void wrong_args(conn *c, const cmd *m)
{
    char msg[128];
    int n = snprintf(msg, sizeof msg, "-ERR wrong number of arguments for '%.*s' command",
                     (int)(m->argl[0] < 32 ? m->argl[0] : 32), m->argv[0]);
    out_raw(c, msg, (size_t)n);
    OUT_LIT(c, "\r\n");
}

static void do_set(conn *c, const cmd *m)
{
    int nx = 0, xx = 0, keepttl = 0, get = 0;
    int64_t at = 0, v;
    size_t i;
    entry *e;

    for (i = 3; i < m->argc; i++) {
        if (arg_is(m, i, "NX"))
            nx = 1;
        else if (arg_is(m, i, "XX"))
            xx = 1;
        else if (arg_is(m, i, "KEEPTTL"))
            keepttl = 1;
        else if (arg_is(m, i, "GET"))
            get = 1;
        else if ((arg_is(m, i, "EX") || arg_is(m, i, "PX")) && i + 1 < m->argc && !at) {
            int ex = arg_is(m, i, "EX");
            if (arg_int(m, i + 1, &v) < 0 || v <= 0 || (ex && v > INT64_MAX / 1000 - m->now) ||
                v > INT64_MAX - m->now) {
                out_err(c, "-ERR invalid expire time in 'set' command");
                return;
            }
            at = m->now + (ex ? v * 1000 : v);
            i++;
        } else {
            out_err(c, "-ERR syntax error");
            return;
        }
    }
    if ((nx && xx) || (keepttl && at)) {
        out_err(c, "-ERR syntax error");
        return;
    }
    e = lookup(m->argv[1], m->argl[1], m->now);
    if (get) {
        if (e)
            out_bulk(c, e->val, e->vlen);
        else
            out_nil(c);
    }
    if ((nx && e) || (xx && !e)) {
        if (!get)
            out_nil(c);
        return;
    }
    if (e) {
        if (set_val(e, m->argv[2], m->argl[2]) < 0) {
            c->oom = 1;
            return;
        }
        if (!keepttl)
            set_expire(e, at);
    } else {
        e = insert(m->argv[1], m->argl[1], m->argv[2], m->argl[2]);
        if (!e) {
            out_err(c, "-OOM command not allowed when used memory > 'maxmemory'");
            return;
        }
        set_expire(e, at);
    }
    if (!get)
        OUT_LIT(c, "+OK\r\n");
}

static void do_incr(conn *c, const cmd *m, int64_t by)
{
    entry *e = lookup(m->argv[1], m->argl[1], m->now);
    int64_t v = 0;
    char num[24];
    size_t n;

    if (e) {
        cmd vm = *m;
        const char *vp = e->val;
        size_t vl = e->vlen;
        vm.argv = &vp;
        vm.argl = &vl;
        if (arg_int(&vm, 0, &v) < 0) {
            out_err(c, "-ERR value is not an integer or out of range");
            return;
        }
    }
    if ((by > 0 && v > INT64_MAX - by) || (by < 0 && v < INT64_MIN - by)) {
        out_err(c, "-ERR increment or decrement would overflow");
        return;
    }
    v += by;
    n = fmt_i64(num, v);
    if (e) {
        if (set_val(e, num, n) < 0) {
            c->oom = 1;
            return;
        }
    } else if (!insert(m->argv[1], m->argl[1], num, n)) {
        out_err(c, "-OOM out of memory");
        return;
    }
    out_int(c, v);
}

static void do_expire(conn *c, const cmd *m, int64_t unit)
{
    entry *e;
    int64_t v;

    if (arg_int(m, 2, &v) < 0 || (unit > 1 && (v > INT64_MAX / unit || v < INT64_MIN / unit))) {
        out_err(c, "-ERR value is not an integer or out of range");
        return;
    }
    e = lookup(m->argv[1], m->argl[1], m->now);
    if (!e) {
        out_int(c, 0);
        return;
    }
    v *= unit;
    if (v <= 0) {
        (void)del_key(m->argv[1], m->argl[1], m->now);
    } else {
        if (v > INT64_MAX - m->now) {
            out_err(c, "-ERR invalid expire time in 'expire' command");
            return;
        }
        set_expire(e, m->now + v);
    }
    out_int(c, 1);
}

static void do_ttl(conn *c, const cmd *m, int ms)
{
    entry *e = lookup(m->argv[1], m->argl[1], m->now);
    int64_t left;

    if (!e) {
        out_int(c, -2);
        return;
    }
    if (!e->expire) {
        out_int(c, -1);
        return;
    }
    left = e->expire - m->now;
    out_int(c, ms ? left : (left + 500) / 1000);
}

static void do_config(conn *c, const cmd *m)
{
    if (m->argc == 3 && arg_is(m, 1, "GET")) {
        /* redis-benchmark asks for "save" and "appendonly". */
        if (arg_is(m, 2, "save")) {
            OUT_LIT(c, "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
        } else if (arg_is(m, 2, "appendonly")) {
            OUT_LIT(c, "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
        } else if (arg_is(m, 2, "databases")) {
            OUT_LIT(c, "*2\r\n$9\r\ndatabases\r\n$1\r\n1\r\n");
        } else {
            OUT_LIT(c, "*0\r\n");
        }
        return;
    }
    if (m->argc >= 2 && arg_is(m, 1, "RESETSTAT")) {
        OUT_LIT(c, "+OK\r\n");
        return;
    }
    out_err(c, "-ERR unsupported CONFIG subcommand");
}

/* Executes one command; the table lock is held. */
static void execute(conn *c, const cmd *m)
{
    size_t i, argc = m->argc;
    const char *name = m->argv[0];
    size_t nl = m->argl[0];

#define IS(word) (nl == sizeof word - 1 && strncasecmp(name, word, nl) == 0)
#define NEED(cond)              \
    do {                        \
        if (!(cond)) {          \
            wrong_args(c, m);   \
            return;             \
        }                       \
    } while (0)

    switch (nl) {
    case 3:
        if (IS("GET")) {
            entry *e;
            NEED(argc == 2);
            e = lookup(m->argv[1], m->argl[1], m->now);
            if (e)
                out_bulk(c, e->val, e->vlen);
            else
                out_nil(c);
            return;
        }
        if (IS("SET")) {
            NEED(argc >= 3);
            do_set(c, m);
            return;
        }
        if (IS("DEL")) {
            int64_t n = 0;
            NEED(argc >= 2);
            for (i = 1; i < argc; i++)
                n += del_key(m->argv[i], m->argl[i], m->now);
            out_int(c, n);
            return;
        }
        if (IS("TTL")) {
            NEED(argc == 2);
            do_ttl(c, m, 0);
            return;
        }
        break;
    case 4:
        if (IS("PING")) {
            NEED(argc <= 2);
            if (argc == 2)
                out_bulk(c, m->argv[1], m->argl[1]);
            else
                OUT_LIT(c, "+PONG\r\n");
            return;
        }
        if (IS("INCR") || IS("DECR")) {
            NEED(argc == 2);
            do_incr(c, m, IS("INCR") ? 1 : -1);
            return;
        }
        if (IS("MSET")) {
            NEED(argc >= 3 && argc % 2 == 1);
            for (i = 1; i + 1 < argc; i += 2) {
                entry *e = lookup(m->argv[i], m->argl[i], m->now);
                if (e) {
                    if (set_val(e, m->argv[i + 1], m->argl[i + 1]) < 0) {
                        c->oom = 1;
                        return;
                    }
                    set_expire(e, 0);
                } else if (!insert(m->argv[i], m->argl[i], m->argv[i + 1], m->argl[i + 1])) {
                    out_err(c, "-OOM out of memory");
                    return;
                }
            }
            OUT_LIT(c, "+OK\r\n");
            return;
        }
        if (IS("MGET")) {
            NEED(argc >= 2);
            out_head(c, '*', (int64_t)(argc - 1));
            for (i = 1; i < argc; i++) {
                entry *e = lookup(m->argv[i], m->argl[i], m->now);
                if (e)
                    out_bulk(c, e->val, e->vlen);
                else
                    out_nil(c);
            }
            return;
        }
        if (IS("ECHO")) {
            NEED(argc == 2);
            out_bulk(c, m->argv[1], m->argl[1]);
            return;
        }
        if (IS("PTTL")) {
            NEED(argc == 2);
            do_ttl(c, m, 1);
            return;
        }
        if (IS("QUIT")) {
            OUT_LIT(c, "+OK\r\n");
            c->close = 1;
            return;
        }
        if (IS("INFO")) {
            char info[256];
            int n = snprintf(info, sizeof info,
                             "# Server\r\nredis_version:7.0.0\r\ntide_kv:1\r\n"
                             "tide_loops:%u\r\ntide_lock_waits:%lu\r\n"
                             "# Keyspace\r\ndb0:keys=%zu,expires=%zu\r\n",
                             shared ? (unsigned)tide_multi_count() : 1u,
                             (unsigned long)atomic_load_explicit(&lock_waits,
                                                                 memory_order_relaxed),
                             db_count(), db.nvolatile);
            out_bulk(c, info, (size_t)n);
            return;
        }
        break;
    case 6:
        if (IS("EXPIRE")) {
            NEED(argc == 3);
            do_expire(c, m, 1000);
            return;
        }
        if (IS("EXISTS")) {
            int64_t n = 0;
            NEED(argc >= 2);
            for (i = 1; i < argc; i++)
                n += lookup(m->argv[i], m->argl[i], m->now) != NULL;
            out_int(c, n);
            return;
        }
        if (IS("INCRBY") || IS("DECRBY")) {
            int64_t by;
            NEED(argc == 3);
            if (arg_int(m, 2, &by) < 0 || (IS("DECRBY") && by == INT64_MIN)) {
                out_err(c, "-ERR value is not an integer or out of range");
                return;
            }
            do_incr(c, m, IS("INCRBY") ? by : -by);
            return;
        }
        if (IS("APPEND")) {
            entry *e;
            NEED(argc == 3);
            e = lookup(m->argv[1], m->argl[1], m->now);
            if (!e) {
                if (!insert(m->argv[1], m->argl[1], m->argv[2], m->argl[2])) {
                    out_err(c, "-OOM out of memory");
                    return;
                }
                out_int(c, (int64_t)m->argl[2]);
                return;
            }
            if (e->vlen + m->argl[2] > MAX_BULK) {
                out_err(c, "-ERR string exceeds maximum allowed size");
                return;
            }
            if (e->vlen + m->argl[2] > e->vcap) {
                size_t cap = (e->vlen + m->argl[2]) * 2;
                char *nv = realloc(e->val, cap);
                if (!nv) {
                    out_err(c, "-OOM out of memory");
                    return;
                }
                e->val = nv;
                e->vcap = cap;
            }
            memcpy(e->val + e->vlen, m->argv[2], m->argl[2]);
            e->vlen += m->argl[2];
            out_int(c, (int64_t)e->vlen);
            return;
        }
        if (IS("STRLEN")) {
            entry *e;
            NEED(argc == 2);
            e = lookup(m->argv[1], m->argl[1], m->now);
            out_int(c, e ? (int64_t)e->vlen : 0);
            return;
        }
        if (IS("GETSET")) {
            cmd sm = *m;
            const char *av[4];
            size_t al[4];
            NEED(argc == 3);
            av[0] = "SET"; al[0] = 3;
            av[1] = m->argv[1]; al[1] = m->argl[1];
            av[2] = m->argv[2]; al[2] = m->argl[2];
            av[3] = "GET"; al[3] = 3;
            sm.argv = av;
            sm.argl = al;
            sm.argc = 4;
            do_set(c, &sm);
            return;
        }
        if (IS("DBSIZE")) {
            out_int(c, (int64_t)db_count());
            return;
        }
        if (IS("CONFIG")) {
            do_config(c, m);
            return;
        }
        if (IS("SELECT")) {
            NEED(argc == 2);
            if (arg_is(m, 1, "0"))
                OUT_LIT(c, "+OK\r\n");
            else
                out_err(c, "-ERR DB index is out of range");
            return;
        }
        if (IS("CLIENT")) {
            OUT_LIT(c, "+OK\r\n");
            return;
        }
        break;
    case 7:
        if (IS("PEXPIRE")) {
            NEED(argc == 3);
            do_expire(c, m, 1);
            return;
        }
        if (IS("PERSIST")) {
            entry *e;
            NEED(argc == 2);
            e = lookup(m->argv[1], m->argl[1], m->now);
            out_int(c, e && e->expire);
            if (e)
                set_expire(e, 0);
            return;
        }
        if (IS("FLUSHDB") || IS("COMMAND")) {
            if (IS("FLUSHDB")) {
                db_flush();
                OUT_LIT(c, "+OK\r\n");
            } else {
                OUT_LIT(c, "*0\r\n"); /* redis-cli asks COMMAND DOCS: nothing to tell */
            }
            return;
        }
        break;
    case 8:
        if (IS("FLUSHALL")) {
            db_flush();
            OUT_LIT(c, "+OK\r\n");
            return;
        }
        break;
    default:
        break;
    }
    {
        char msg[160];
        int n = snprintf(msg, sizeof msg, "-ERR unknown command '%.*s'",
                         (int)(nl < 64 ? nl : 64), name);
        for (i = 0; i < (size_t)n; i++)
            if (msg[i] == '\r' || msg[i] == '\n')
                msg[i] = ' ';
        out_raw(c, msg, (size_t)n);
        OUT_LIT(c, "\r\n");
    }
#undef IS
#undef NEED
}

/* ---------------------------------------------------------- connections */

static tide_resp_limits limits;

static int flush_out(conn *c)
{
    ssize_t w;

    if (!c->outlen)
        return 0;
    w = tide_stream_write(c->s, c->out, c->outlen);
    c->outlen = 0;
    if (w < 0)
        return (int)w;
    return tide_stream_drain(c->s);
}

/* A command with more arguments than c->argv holds: grow it to the count
 * in the command's header (the parser bounds it by MAX_ARGS).  0, or -1
 * if there is nothing to grow for (a real limit was hit) or no memory. */
static int grow_args(conn *c, const char *p, size_t len)
{
    const char **na;
    size_t *nl;
    size_t cap, want = 0, i;

    if (!len || p[0] != '*')
        return -1;
    for (i = 1; i < len && i < 12 && p[i] >= '0' && p[i] <= '9'; i++)
        want = want * 10 + (size_t)(p[i] - '0');
    if (want <= c->argcap || want > MAX_ARGS)
        return -1;
    for (cap = c->argcap; cap < want; cap *= 2)
        ;
    if (cap > MAX_ARGS)
        cap = MAX_ARGS;
    na = realloc(c->argv, cap * sizeof *na);
    if (!na)
        return -1;
    c->argv = na;
    nl = realloc(c->argl, cap * sizeof *nl);
    if (!nl)
        return -1;
    c->argl = nl;
    c->argcap = cap;
    return 0;
}

/* Parses and runs every complete command in c->in; keeps the rest. */
static int run_batch(conn *c)
{
    size_t off = 0;
    int rc = 0;
    cmd m;

    m.now = tide_now();
    db_lock_take();
    while (off < c->inlen && !c->close) {
        size_t need = 0;
        ssize_t r = tide_resp_parse_command(c->in + off, c->inlen - off, c->argv, c->argl,
                                            c->argcap, &m.argc, &limits, &need);
        if (r == -EMSGSIZE && grow_args(c, c->in + off, c->inlen - off) == 0)
            continue;
        if (r == 0) {
            c->need = off + need;
            break;
        }
        if (r < 0) {
            out_err(c, r == -EMSGSIZE ? "-ERR Protocol error: too big request"
                                      : "-ERR Protocol error: invalid request");
            c->close = 1;
            break;
        }
        off += (size_t)r;
        m.argv = c->argv;
        m.argl = c->argl;
        if (m.argc)
            execute(c, &m);
        if (c->oom)
            break;
        if (c->outlen >= OUT_FLUSH) {
            db_lock_give();
            rc = flush_out(c);
            db_lock_take();
            if (rc < 0)
                break;
        }
    }
    db_lock_give();
    if (off) {
        memmove(c->in, c->in + off, c->inlen - off);
        c->inlen -= off;
        c->need = c->need > off ? c->need - off : 0;
    }
    return rc;
}

static int kv_handler(tide_stream *s, void *arg)
{
    conn c;

    (void)arg;
    memset(&c, 0, sizeof c);
    c.s = s;
    c.incap = IN_START;
    c.in = malloc(c.incap);
    c.argcap = 16;
    c.argv = malloc(c.argcap * sizeof *c.argv);
    c.argl = malloc(c.argcap * sizeof *c.argl);
    if (!c.in || !c.argv || !c.argl)
        goto out;
    for (;;) {
        ssize_t n;
        if (c.inlen == c.incap || c.need > c.incap) {
            /* A command longer than the buffer: grow (the parser's limits
             * bound it: a bulk of MAX_BULK plus its headers). */
            size_t cap = c.incap * 2;
            char *p;
            if (c.need > cap)
                cap = c.need;
            if (cap > (size_t)MAX_BULK * 2 + 65536)
                break;
            p = realloc(c.in, cap);
            if (!p)
                break;
            c.in = p;
            c.incap = cap;
        }
        n = tide_stream_read(s, c.in + c.inlen, c.incap - c.inlen);
        if (n <= 0)
            break;
        c.inlen += (size_t)n;
        if (c.inlen < c.need)
            continue;
        if (run_batch(&c) < 0 || c.oom)
            break;
        if (flush_out(&c) < 0 || c.close)
            break;
    }
out:
    free(c.in);
    free(c.out);
    free(c.argv);
    free(c.argl);
    return 0;
}

/* ----------------------------------------------------------------- main */

struct config {
    const char *host;
    int port;
    unsigned loops;
};

static struct config cfg;

/* The periodic half of expiry (one loop does it). */
static int expire_task(void *arg)
{
    (void)arg;
    for (;;) {
        if (tide_sleep(EXPIRE_PERIOD_MS) < 0)
            return 0;
        db_lock_take();
        expire_cycle(tide_now());
        db_lock_give();
    }
}

static int kv_main(void *arg)
{
    tide_server_opts opts;
    tide_server *srv;
    tide_task *expirer = NULL;
    sigset_t stop;
    int rc, sig, index = tide_multi_index();

    (void)arg;
    if (index < 0)
        index = 0;
    tide_server_opts_init(&opts);
    opts.reuseport = cfg.loops != 1;
    opts.write_timeout_ms = 0; /* as Redis: a slow reader is not dropped */
    /* The connection reads into its own buffer (IN_START and up): with the
     * stream's limit at IN_START, a read into an empty buffer goes straight
     * from the kernel into it, not through the stream's buffer and a copy
     * (a stream reads directly only when the caller's room is at least its
     * read size, 64 KiB by default).  Nothing here uses the stream's own
     * buffering (readline...), so the limit bounds nothing else. */
    opts.stream.limit = IN_START;
    rc = tide_start_server(cfg.host, cfg.port, kv_handler, NULL, &opts, &srv);
    if (rc < 0) {
        fprintf(stderr, "kv_server: cannot listen on %s:%d: %s\n", cfg.host, cfg.port,
                tide_strerror(rc));
        tide_multi_stop();
        return rc;
    }
    if (cfg.port == 0)
        cfg.port = tide_server_port(srv); /* the other loops take the same port */
    if (index == 0) {
        printf("kv_server: listening on %s:%d (%u loop%s)\n", cfg.host, tide_server_port(srv),
               cfg.loops ? cfg.loops : (unsigned)tide_multi_count(),
               cfg.loops == 1 ? "" : "s");
        fflush(stdout);
        if (tide_create_task(&expirer, expire_task, NULL) < 0)
            expirer = NULL;
        sigemptyset(&stop);
        sigaddset(&stop, SIGINT);
        sigaddset(&stop, SIGTERM);
        sig = tide_signal_wait(&stop);
        tide_multi_stop();
    } else {
        /* Wait to be cancelled by tide_multi_stop. */
        tide_event never;
        tide_event_init(&never);
        sig = tide_event_wait(&never);
    }
    (void)sig;
    {
        tide_scope sh; /* tide_multi_stop cancelled this task too: finish the cleanup */
        tide_shield_begin(&sh);
        rc = tide_server_close(srv, TIDE_SERVER_CANCEL);
        if (expirer) {
            tide_cancel(expirer);
            (void)tide_await(expirer);
        }
        tide_shield_end(&sh);
    }
    return rc;
}

static void usage(void)
{
    fprintf(stderr, "usage: kv_server [-j LOOPS] [HOST] PORT\n");
    exit(2);
}

int main(int argc, char **argv)
{
    tide_multi_opts mo;
    sigset_t stop;
    int rc, i = 1, probe = -1;
    char *end;

    cfg.host = "127.0.0.1";
    cfg.loops = 1;
    if (i + 1 < argc && strcmp(argv[i], "-j") == 0) {
        long j = strtol(argv[i + 1], &end, 10);
        if (*end || j < 0 || j > TIDE_MULTI_MAX_LOOPS)
            usage();
        cfg.loops = (unsigned)j;
        i += 2;
    }
    if (argc - i == 2)
        cfg.host = argv[i++];
    if (argc - i != 1)
        usage();
    cfg.port = (int)strtol(argv[i], &end, 10);
    if (*end || cfg.port < 0 || cfg.port > 65535)
        usage();
    db.rehash = -1;
    tide_resp_limits_init(&limits);
    limits.max_bulk = MAX_BULK;
    limits.max_elements = MAX_ARGS;
    /* Keep SIGINT/SIGTERM pending until loop 0 waits for them (every
     * thread inherits the mask). */
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);
    tide_multi_opts_init(&mo);
    mo.loops = cfg.loops;
    mo.pin = 0;
    shared = cfg.loops != 1;
    if (shared && cfg.port == 0) {
        /* Port 0 with several loops: pick one port for all of them.  The
         * probe is bound, not listening, so no connection goes to it. */
        struct sockaddr_in sa;
        int one = 1;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        probe = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0 || inet_pton(AF_INET, cfg.host, &sa.sin_addr) != 1 ||
            setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
            setsockopt(probe, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0 ||
            bind(probe, (struct sockaddr *)&sa, sizeof sa) < 0 ||
            (cfg.port = tide_sock_port(probe)) <= 0) {
            fprintf(stderr, "kv_server: cannot pick a port on %s (give one)\n", cfg.host);
            return 1;
        }
    }
    rc = tide_multi_run(kv_main, NULL, &mo);
    db_flush();
    if (probe >= 0)
        close(probe);
    if (rc < 0) {
        fprintf(stderr, "kv_server: %s\n", tide_strerror(rc));
        return 1;
    }
    return 0;
}
