/*
 * Task dumps: every live task, what it waits on, and the native backtrace
 * of its suspended stack, grouped by identical stacks (Go's goroutine dump).
 *
 * Backtraces walk frame pointers from the context a task saved when it
 * switched out (src/arch: the saved frame holds rbp/x29 and the resume
 * address), so a dump never switches into a task and needs no unwinder.
 * tide and everything built with it here use -fno-omit-frame-pointer; a
 * frame chain that leaves the task's stack, goes down or misaligns ends
 * the walk, so foreign frames without frame pointers shorten a stack, never
 * crash the dump.
 *
 * Names come from the ELF symbol tables of the loaded objects (.symtab,
 * which knows static functions; .dynsym when stripped), read once with
 * dl_iterate_phdr + mmap and kept sorted for binary search: dladdr alone
 * sees only exported symbols.  file:line is left to addr2line: each frame
 * prints "module+offset", which `addr2line -f -e module offset` resolves
 * with DWARF (libdw would add a dependency for what one command does).
 */
#include "tide_int.h"

#include <arpa/inet.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "dump.h"

/* ------------------------------------------------------------ wait kinds */

static const char *const wait_names[TIDE_WAIT__COUNT] = {
    [TIDE_WAIT_NONE] = "none",
    [TIDE_WAIT_SLEEP] = "sleep",
    [TIDE_WAIT_FD_READ] = "fd-read",
    [TIDE_WAIT_FD_WRITE] = "fd-write",
    [TIDE_WAIT_LOCK] = "lock",
    [TIDE_WAIT_EVENT] = "event",
    [TIDE_WAIT_COND] = "condition",
    [TIDE_WAIT_SEM] = "semaphore",
    [TIDE_WAIT_BARRIER] = "barrier",
    [TIDE_WAIT_QUEUE_PUT] = "queue-put",
    [TIDE_WAIT_QUEUE_GET] = "queue-get",
    [TIDE_WAIT_QUEUE_JOIN] = "queue-join",
    [TIDE_WAIT_FUTURE] = "future",
    [TIDE_WAIT_TASK] = "task",
    [TIDE_WAIT_GROUP] = "group",
    [TIDE_WAIT_TASKS] = "wait-tasks",
    [TIDE_WAIT_POOL] = "pool-job",
    [TIDE_WAIT_PROCESS] = "process",
    [TIDE_WAIT_SIGNAL] = "signal",
    [TIDE_WAIT_STREAM_DRAIN] = "stream-drain",
    [TIDE_WAIT_SERVER] = "server",
    [TIDE_WAIT_CONNECT] = "connect",
    [TIDE_WAIT_CALL] = "loop-call",
};

const char *tide_wait_kind_name(tide_wait_kind k)
{
    return (unsigned)k < TIDE_WAIT__COUNT ? wait_names[k] : "?";
}

/* The primitive whose waitlist holds the waiter a waitlist wait (sync.c)
 * suspended with: the waiter is the unlink argument and lies in the list
 * at offset off of the primitive. */
static const void *waitlist_owner(const tide_task *t, size_t off)
{
    const struct tide__waiter *w = t->unlink_arg;
    if (!tide__is_wl_unlink(t->unlink) || !w)
        return NULL;
    return w->list ? (const char *)w->list - off : NULL;
}

const void *tide__wait_object(const tide_task *t)
{
    switch (t->wait_kind) {
    case TIDE_WAIT_LOCK:
        return waitlist_owner(t, offsetof(tide_lock, waiters));
    case TIDE_WAIT_EVENT:
        return waitlist_owner(t, offsetof(tide_event, waiters));
    case TIDE_WAIT_COND:
        return waitlist_owner(t, offsetof(tide_cond, waiters));
    case TIDE_WAIT_SEM:
        return waitlist_owner(t, offsetof(tide_sem, waiters));
    default:
        return t->wait_obj; /* fd waits: the tide__fd (io.c, io_uring_ops.c) */
    }
}

/* What a waiting task waits on, as the dump shows it: the kind (an fd read
 * of tide_signal_wait is a "signal" wait) and the object (a tide__fd for fd
 * kinds, the sigset_t for a signal). */
static tide_wait_kind wait_of(const tide_task *t, const void **obj)
{
    tide_wait_kind k = (tide_wait_kind)t->wait_kind;

    *obj = tide__wait_object(t);
    switch (k) {
    case TIDE_WAIT_FD_READ:
    case TIDE_WAIT_FD_WRITE:
    case TIDE_WAIT_LOCK:
    case TIDE_WAIT_EVENT:
    case TIDE_WAIT_COND:
    case TIDE_WAIT_SEM:
        if (!*obj)
            return TIDE_WAIT_NONE; /* a kind an earlier wait left (see tide__wait_object) */
        break;
    default:
        break;
    }
    if (k == TIDE_WAIT_FD_READ && ((const tide__fd *)*obj)->sigwait) {
        *obj = ((const tide__fd *)*obj)->sigwait;
        k = TIDE_WAIT_SIGNAL;
    }
    return k;
}

int tide_task_wait_info(const tide_task *t, tide_wait_info *out)
{
    const void *obj = NULL;

    if (!out || tide__task_check(t) < 0)
        return -EINVAL;
    out->kind = t->state == TIDE_TASK_WAITING ? wait_of(t, &obj) : TIDE_WAIT_NONE;
    out->object = NULL;
    out->fd = -1;
    out->since_ms = 0;
    if (out->kind == TIDE_WAIT_NONE)
        return 0;
    if (out->kind == TIDE_WAIT_FD_READ || out->kind == TIDE_WAIT_FD_WRITE)
        out->fd = ((const tide__fd *)obj)->fd;
    else
        out->object = obj;
    out->since_ms = t->wait_since / 1000000;
    return 0;
}

/* ------------------------------------------------------------ symbolizer */

typedef struct sym {
    uintptr_t addr;
    uintptr_t size;
    const char *name;
} sym;

typedef struct module {
    uintptr_t base;   /* load bias: runtime address - file address */
    uintptr_t lo, hi; /* the loaded range */
    char *path;
    sym *syms;
    size_t nsyms;
} module;

static pthread_mutex_t sym_lock = PTHREAD_MUTEX_INITIALIZER;
static module *mods;
static size_t nmods;

static int sym_cmp(const void *a, const void *b)
{
    const sym *x = a, *y = b;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* Reads the function symbols of the ELF file at path (kept mapped for the
 * names: the process keeps them for its life). */
static void load_syms(module *m)
{
    const ElfW(Ehdr) * eh;
    const ElfW(Shdr) * sh;
    struct stat st;
    const char *img;
    int fd, pass, i;

    fd = open(m->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    if (fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof *eh) {
        close(fd);
        return;
    }
    img = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (img == MAP_FAILED)
        return;
    eh = (const ElfW(Ehdr) *)img;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_shoff == 0 ||
        eh->e_shoff + (size_t)eh->e_shnum * sizeof *sh > (size_t)st.st_size)
        return;
    sh = (const ElfW(Shdr) *)(img + eh->e_shoff);
    /* .symtab if there is one (static functions too), else .dynsym. */
    for (pass = 0; pass < 2 && !m->nsyms; pass++) {
        unsigned want = pass == 0 ? SHT_SYMTAB : SHT_DYNSYM;
        for (i = 0; i < eh->e_shnum; i++) {
            const ElfW(Sym) * s;
            const char *strs;
            size_t n, k, j = 0;

            if (sh[i].sh_type != want || sh[i].sh_link >= eh->e_shnum)
                continue;
            if (sh[i].sh_offset + sh[i].sh_size > (size_t)st.st_size ||
                sh[sh[i].sh_link].sh_offset + sh[sh[i].sh_link].sh_size > (size_t)st.st_size)
                continue;
            s = (const ElfW(Sym) *)(img + sh[i].sh_offset);
            strs = img + sh[sh[i].sh_link].sh_offset;
            n = sh[i].sh_size / sizeof *s;
            m->syms = tide__malloc((n ? n : 1) * sizeof *m->syms);
            if (!m->syms)
                return;
            for (k = 0; k < n; k++) {
                unsigned type = ELF64_ST_TYPE(s[k].st_info);
                if ((type != STT_FUNC && type != STT_GNU_IFUNC) || s[k].st_value == 0 ||
                    s[k].st_name >= sh[sh[i].sh_link].sh_size)
                    continue;
                m->syms[j].addr = m->base + s[k].st_value;
                m->syms[j].size = s[k].st_size;
                m->syms[j].name = strs + s[k].st_name;
                j++;
            }
            m->nsyms = j;
            qsort(m->syms, j, sizeof *m->syms, sym_cmp);
            break;
        }
    }
}

static int add_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    module *m;
    int i;

    (void)size;
    (void)arg;
    for (i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        if (info->dlpi_addr + ph->p_vaddr < lo)
            lo = info->dlpi_addr + ph->p_vaddr;
        if (info->dlpi_addr + ph->p_vaddr + ph->p_memsz > hi)
            hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
    }
    if (lo >= hi)
        return 0;
    m = tide__realloc(mods, (nmods + 1) * sizeof *mods);
    if (!m)
        return 1;
    mods = m;
    m = &mods[nmods];
    memset(m, 0, sizeof *m);
    m->base = info->dlpi_addr;
    m->lo = lo;
    m->hi = hi;
    if (info->dlpi_name && info->dlpi_name[0]) {
        m->path = strdup(info->dlpi_name);
    } else {
#ifdef __linux__
        char buf[4096];
        ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
        buf[n > 0 ? n : 0] = '\0';
        m->path = strdup(n > 0 ? buf : "/proc/self/exe");
#else
        /* The main program: the BSDs name it in dlpi_name; elsewhere its
         * symbols stay unnamed (frames print as module+offset). */
        m->path = strdup("");
#endif
    }
    if (!m->path)
        return 1;
    nmods++;
    load_syms(m);
    return 0;
}

static const module *find_module(uintptr_t pc)
{
    size_t i;
    for (i = 0; i < nmods; i++)
        if (pc >= mods[i].lo && pc < mods[i].hi)
            return &mods[i];
    return NULL;
}

void tide__sym_lock(void)
{
    pthread_mutex_lock(&sym_lock);
    if (!mods)
        dl_iterate_phdr(add_module, NULL);
}

void tide__sym_unlock(void)
{
    pthread_mutex_unlock(&sym_lock);
}

/* Resolves pc (under tide__sym_lock): the module (or NULL) and the function
 * name and offset (name NULL when unknown). */
static const module *resolve(uintptr_t pc, const char **name, uintptr_t *off)
{
    const module *m = find_module(pc);
    size_t lo = 0, hi;

    *name = NULL;
    *off = 0;
    if (!m)
        return NULL;
    hi = m->nsyms;
    while (lo < hi) { /* the last symbol at or below pc */
        size_t mid = (lo + hi) / 2;
        if (m->syms[mid].addr <= pc)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo > 0) {
        const sym *s = &m->syms[lo - 1];
        if (s->size == 0 || pc < s->addr + s->size) {
            *name = s->name;
            *off = pc - s->addr;
        }
    }
    return m;
}

/* ------------------------------------------------------------ writing */

void tide__ob_flush(tide__outbuf *b)
{
    size_t done = 0;
    while (done < b->n && b->err == 0) {
        ssize_t w = write(b->fd, b->buf + done, b->n - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            b->err = -errno;
        } else {
            done += (size_t)w;
        }
    }
    b->n = 0;
}

void tide__ob_printf(tide__outbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (sizeof b->buf - b->n < 512)
        tide__ob_flush(b);
    va_start(ap, fmt);
    n = vsnprintf(b->buf + b->n, sizeof b->buf - b->n, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof b->buf - b->n) { /* too long for what is left: truncate */
        b->n = sizeof b->buf - 1;
        return;
    }
    b->n += (size_t)n;
}

void tide__ob_frames(tide__outbuf *b, const uintptr_t *pcs, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        /* A return address points after its call: look the call itself up
         * (pc - 1), so names and addr2line's lines are the call's. */
        uintptr_t pc = pcs[i], look = i ? pc - 1 : pc, off;
        const char *name;
        const module *m = resolve(look, &name, &off);
        if (name)
            tide__ob_printf(b, "  #%-2zu 0x%012llx %s+0x%llx", i, (unsigned long long)pc, name,
                            (unsigned long long)(off + (look != pc)));
        else
            tide__ob_printf(b, "  #%-2zu 0x%012llx ?", i, (unsigned long long)pc);
        if (m)
            tide__ob_printf(b, " (%s+0x%llx)\n", m->path,
                            (unsigned long long)(look - m->base));
        else
            tide__ob_printf(b, "\n");
    }
}

/* ------------------------------------------------------------ stacks */

size_t tide__fp_walk(uintptr_t pc, uintptr_t fp, uintptr_t lo, uintptr_t hi, uintptr_t *out,
                     size_t max)
{
    size_t n = 0;

    if (pc)
        out[n++] = pc;
    while (n < max && fp >= lo && fp + 2 * sizeof(void *) <= hi && (fp & (sizeof(void *) - 1)) == 0) {
        const uintptr_t *f = (const uintptr_t *)fp;
        uintptr_t next = f[0], ret = f[1];
        if (ret < 4096)
            break;
        out[n++] = ret;
        if (next <= fp) /* the chain goes up the stack, or ends (0) */
            break;
        fp = next;
    }
    return n;
}

/* The frames of a switched-out task, from its saved context. */
static size_t task_stack(const tide_task *t, uintptr_t *out, size_t max)
{
#if !defined(TIDE_CONTEXT_UCONTEXT) && defined(__x86_64__)
    /* [sp]: mxcsr/fpcw, r15, r14, r13, r12, rbx, rbp, resume address */
    const uintptr_t *sp = t->ctx.sp;
    if (!sp)
        return 0;
    return tide__fp_walk(sp[7], sp[6], (uintptr_t)t->stack_lo, (uintptr_t)t, out, max);
#elif !defined(TIDE_CONTEXT_UCONTEXT) && defined(__aarch64__)
    /* [sp + 80]: x29 (fp), x30 (lr: where the switch returns) */
    const uintptr_t *sp = t->ctx.sp;
    if (!sp)
        return 0;
    return tide__fp_walk(sp[11], sp[10], (uintptr_t)t->stack_lo, (uintptr_t)t, out, max);
#elif defined(TIDE_CONTEXT_UCONTEXT) && defined(__x86_64__) && defined(REG_RIP)
    const greg_t *g = t->ctx.uc.uc_mcontext.gregs;
    return tide__fp_walk((uintptr_t)g[REG_RIP], (uintptr_t)g[REG_RBP], (uintptr_t)t->stack_lo,
                         (uintptr_t)t, out, max);
#elif defined(TIDE_CONTEXT_UCONTEXT) && defined(__aarch64__) && defined(__linux__)
    const mcontext_t *mc = &t->ctx.uc.uc_mcontext;
    return tide__fp_walk((uintptr_t)mc->pc, (uintptr_t)mc->regs[29], (uintptr_t)t->stack_lo,
                         (uintptr_t)t, out, max);
#else
    (void)t;
    (void)out;
    (void)max;
    return 0;
#endif
}

/* ------------------------------------------------------------ the dump */

#define MAXF 40

typedef struct entry {
    tide_task *t;
    uint64_t hash;
    uint32_t nf;
    uint32_t group; /* index into the groups */
    uintptr_t *pcs;
} entry;

typedef struct group {
    uint32_t first; /* the first entry with this stack */
    uint32_t count;
    uint32_t order; /* place of the first entry: ties keep creation order */
} group;

static uint64_t hash_pcs(const uintptr_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull ^ n;
    size_t i;
    for (i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
        h ^= h >> 29;
    }
    return h;
}

static int group_cmp(const void *a, const void *b)
{
    const group *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

static void print_addr(tide__outbuf *b, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[INET6_ADDRSTRLEN];
    int peer = 1;

    if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0) {
        len = sizeof ss;
        peer = 0;
        if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
            return;
    }
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        tide__ob_printf(b, " (%s %s:%u)", peer ? "peer" : "local", host, ntohs(in->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        tide__ob_printf(b, " (%s [%s]:%u)", peer ? "peer" : "local", host,
                        ntohs(in6->sin6_port));
    } else if (ss.ss_family == AF_UNIX) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)&ss;
        size_t n = len > offsetof(struct sockaddr_un, sun_path)
                       ? len - offsetof(struct sockaddr_un, sun_path) : 0;
        if (n && un->sun_path[0])
            tide__ob_printf(b, " (unix %s %.*s)", peer ? "peer" : "local", (int)n, un->sun_path);
        else
            tide__ob_printf(b, " (unix %s)", peer ? "peer" : "local");
    }
}

static void print_wait(tide__outbuf *b, const tide_task *t, int64_t now)
{
    const void *obj;
    tide_wait_kind k = wait_of(t, &obj);

    tide__ob_printf(b, " on %s", tide_wait_kind_name(k));
    switch (k) {
    case TIDE_WAIT_FD_READ:
    case TIDE_WAIT_FD_WRITE: {
        int fd = ((const tide__fd *)obj)->fd;
        tide__ob_printf(b, " fd %d", fd);
        print_addr(b, fd);
        if (t->nocancel) /* only uop_run waits on an fd uncancellably */
            tide__ob_printf(b, " (io_uring completion after cancel)");
        break;
    }
    case TIDE_WAIT_SLEEP:
        if (t->wait_until != TIDE__NEVER)
            tide__ob_printf(b, " (%lld ms left)", (long long)((t->wait_until - now) / 1000000));
        break;
    case TIDE_WAIT_TASK: {
        const tide_task *o = obj;
        if (tide__task_check(o) == 0)
            tide__ob_printf(b, " %llu \"%s\"", (unsigned long long)o->id, tide_task_name(o));
        break;
    }
    case TIDE_WAIT_SIGNAL: {
        const sigset_t *set = obj;
        const char *sep = " ";
        int s;
        for (s = 1; s < NSIG; s++)
            if (sigismember(set, s) == 1) {
                tide__ob_printf(b, "%s%d", sep, s);
                sep = ",";
            }
        break;
    }
    case TIDE_WAIT_NONE:
        break;
    default:
        tide__ob_printf(b, " %p", obj);
        break;
    }
    tide__ob_printf(b, " for %lld ms", (long long)((now - t->wait_since) / 1000000));
}

static void print_task(tide__outbuf *b, const tide_task *t, int64_t now)
{
    const tide_scope *s = t->scope;

    tide__ob_printf(b, "task %llu \"%s\" %s", (unsigned long long)t->id, tide_task_name(t),
                    tide_task_state_name((tide_task_state)t->state));
    if (t->state == TIDE_TASK_WAITING)
        print_wait(b, t, now);
    if (t->timer.idx != TIDE__NOT_IN_HEAP)
        tide__ob_printf(b, ", wakes in %lld ms", (long long)((t->timer.deadline - now) / 1000000));
    if (t->cancel_req)
        tide__ob_printf(b, ", cancelled");
    if (s) {
        tide__ob_printf(b, ", scope");
        if (s->deadline != TIDE__NEVER)
            tide__ob_printf(b, " deadline in %lld ms", (long long)((s->deadline - now) / 1000000));
        if (s->flags & TIDE__SCOPE_FIRED)
            tide__ob_printf(b, " expired");
        if (t->state == TIDE_TASK_WAITING ? tide__shielded(t) : (int)(t->scope_kinds & 1))
            tide__ob_printf(b, " shielded");
    }
    if (t->parent_id)
        tide__ob_printf(b, ", parent task %llu", (unsigned long long)t->parent_id);
    if (t->joiner == TIDE__JOINER_LOOP)
        tide__ob_printf(b, ", awaited by the loop");
    else if (t->joiner)
        tide__ob_printf(b, ", awaited by task %llu", (unsigned long long)t->joiner->id);
    else if (t->detached)
        tide__ob_printf(b, ", detached");
    if (t->group)
        tide__ob_printf(b, ", in group %p", (const void *)t->group);
    tide__ob_printf(b, "\n");
}

int tide_loop_dump(tide_loop *loop, int fd)
{
    tide__outbuf *b;
    entry *e = NULL;
    group *g = NULL;
    uint32_t *slots = NULL;
    uintptr_t *pcs = NULL;
    size_t n, i, ng = 0, nslots;
    int64_t now;
    tide_task *t;
    int rc;

    if (!loop && !(loop = tide__tls_loop))
        return -EINVAL;
    if (fd < 0)
        return -EINVAL;
    if (tide__loop_thread_check(loop) < 0)
        return -EPERM;
    n = loop->tasks.n;
    for (nslots = 16; nslots < 2 * n; nslots *= 2)
        ;
    b = tide__malloc(sizeof *b);
    e = tide__calloc(n ? n : 1, sizeof *e);
    g = tide__calloc(n ? n : 1, sizeof *g);
    pcs = tide__malloc((n ? n : 1) * MAXF * sizeof *pcs);
    slots = tide__malloc(nslots * sizeof *slots);
    if (!b || !e || !g || !pcs || !slots) {
        rc = -ENOMEM;
        goto out;
    }
    memset(slots, 0xff, nslots * sizeof *slots);
    b->fd = fd;
    b->n = 0;
    b->err = 0;
    now = tide__loop_ns(loop);

    /* Collect every stack and group identical ones (open addressing on the
     * hash, compared frame by frame). */
    for (i = 0, t = loop->tasks.head; t && i < n; t = t->next, i++) {
        size_t h;
        e[i].t = t;
        e[i].pcs = pcs + i * MAXF;
        if (t->state == TIDE_TASK_WAITING || t->state == TIDE_TASK_READY)
            e[i].nf = (uint32_t)task_stack(t, e[i].pcs, MAXF);
        else if (t->state == TIDE_TASK_RUNNING && t == loop->current)
            e[i].nf = (uint32_t)tide__fp_walk(0, (uintptr_t)__builtin_frame_address(0),
                                              (uintptr_t)t->stack_lo, (uintptr_t)t, e[i].pcs,
                                              MAXF); /* the dump's caller: live frames */
        e[i].hash = hash_pcs(e[i].pcs, e[i].nf);
        for (h = e[i].hash & (nslots - 1);; h = (h + 1) & (nslots - 1)) {
            uint32_t gi = slots[h];
            if (gi == UINT32_MAX) {
                slots[h] = (uint32_t)ng;
                g[ng].first = (uint32_t)i;
                g[ng].count = 1;
                g[ng].order = (uint32_t)ng;
                e[i].group = (uint32_t)ng++;
                break;
            }
            const entry *f = &e[g[gi].first];
            if (f->hash == e[i].hash && f->nf == e[i].nf &&
                memcmp(f->pcs, e[i].pcs, f->nf * sizeof *f->pcs) == 0) {
                g[gi].count++;
                e[i].group = gi;
                break;
            }
        }
    }
    n = i;

    tide__ob_printf(b, "tide: dump of loop %p at %lld ms: %zu tasks, %zu distinct stacks\n",
                    (void *)loop, (long long)(now / 1000000), n, ng);
    {
        /* Sort the groups (most tasks first), and list each one's tasks:
         * chain the entries of each group through a "next" array. */
        uint32_t *next = tide__malloc((n ? n : 1) * sizeof *next);
        uint32_t *last = tide__malloc((ng ? ng : 1) * sizeof *last);
        uint32_t *gmap = tide__malloc((ng ? ng : 1) * sizeof *gmap);
        size_t k;

        if (!next || !last || !gmap) {
            tide__free(next);
            tide__free(last);
            tide__free(gmap);
            rc = -ENOMEM;
            goto out;
        }
        for (k = 0; k < ng; k++)
            last[k] = UINT32_MAX;
        for (i = n; i-- > 0;) { /* build each group's list in creation order */
            next[i] = last[e[i].group];
            last[e[i].group] = (uint32_t)i;
        }
        qsort(g, ng, sizeof *g, group_cmp);
        for (k = 0; k < ng; k++)
            gmap[k] = e[g[k].first].group; /* the original group index */
        tide__sym_lock();
        for (k = 0; k < ng; k++) {
            const entry *f = &e[g[k].first];
            uint32_t j;
            tide__ob_printf(b, "\n%u task%s with this stack:\n", g[k].count,
                            g[k].count == 1 ? "" : "s");
            for (j = last[gmap[k]]; j != UINT32_MAX; j = next[j]) {
                tide__ob_printf(b, "  ");
                print_task(b, e[j].t, now);
            }
            if (f->nf)
                tide__ob_frames(b, f->pcs, f->nf);
            else if (f->t->state == TIDE_TASK_CREATED)
                tide__ob_printf(b, "  (not started)\n");
            else if (f->t->state == TIDE_TASK_DONE)
                tide__ob_printf(b, "  (ended with %d: not awaited yet)\n", f->t->result);
            else if (f->t->state == TIDE_TASK_RUNNING)
                tide__ob_printf(b, "  (running: the dump's own caller)\n");
            else
                tide__ob_printf(b, "  (no frames)\n");
        }
        tide__sym_unlock();
        tide__free(next);
        tide__free(last);
        tide__free(gmap);
    }
    tide__ob_flush(b);
    rc = b->err;
out:
    tide__free(b);
    tide__free(e);
    tide__free(g);
    tide__free(pcs);
    tide__free(slots);
    return rc;
}
