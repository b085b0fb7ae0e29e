/*
 * Context switch for aarch64 (AAPCS64).
 *
 * A suspended context is a stack pointer; the 176-byte frame at it holds
 * x19-x28, x29 (fp), x30 (lr: where to resume), d8-d15 and FPCR (rounding
 * mode and friends).  Only callee-saved state is kept; the caller of
 * tide__ctx_switch has saved everything else, as for any call.
 */
#if defined(__APPLE__)
#define SYM(x) _##x
#define FUNC(x) .globl SYM(x); .private_extern SYM(x); .p2align 4; SYM(x):
#define END(x)
#else
#define SYM(x) x
#define FUNC(x) .globl x; .hidden x; .type x, %function; .p2align 4; x:
#define END(x) .size x, . - x
#endif

    .text

/* void tide__ctx_switch(tide__ctx *from, tide__ctx *to) */
FUNC(tide__ctx_switch)
    sub     sp, sp, #176
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    stp     d8, d9, [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    mrs     x9, fpcr
    str     x9, [sp, #160]
    mov     x9, sp
    str     x9, [x0]            /* from->sp */
    ldr     x9, [x1]            /* to->sp */
    mov     sp, x9
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     d8, d9, [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    ldr     x9, [sp, #160]
    msr     fpcr, x9
    add     sp, sp, #176
    ret
END(tide__ctx_switch)

/*
 * void tide__ctx_make(tide__ctx *c, void *lo, size_t size,
 *                     void (*entry)(void *), void *arg)
 * Builds a frame as tide__ctx_switch leaves it, resuming at the trampoline
 * with x19 = entry and x20 = arg; the stack stays 16-byte aligned.  The new
 * context inherits the caller's FPCR.
 */
FUNC(tide__ctx_make)
    add     x9, x1, x2
    and     x9, x9, #~15
    sub     x9, x9, #192        /* 16 bytes of headroom + the 176-byte frame */
    mov     x10, x9
    mov     x11, #22            /* zero the 22 dwords of the frame */
1:  str     xzr, [x10], #8
    subs    x11, x11, #1
    b.ne    1b
    str     x3, [x9, #0]        /* x19 = entry */
    str     x4, [x9, #8]        /* x20 = arg */
    adr     x10, SYM(tide__ctx_trampoline)
    str     x10, [x9, #88]      /* x30 */
    mrs     x10, fpcr
    str     x10, [x9, #160]
    str     x9, [x0]
    ret
END(tide__ctx_make)

FUNC(tide__ctx_trampoline)
    .cfi_startproc
    .cfi_undefined x30          /* the outermost frame of a task */
    mov     x0, x20
    blr     x19
    brk     #0                  /* entry never returns */
    .cfi_endproc
END(tide__ctx_trampoline)

#if defined(__linux__) && defined(__ELF__)
    .section .note.GNU-stack,"",%progbits
#endif
