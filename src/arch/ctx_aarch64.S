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

/* void tide__ctx_switch(tide__ctx *from, tide__ctx *to)
 *
 * CFI as on x86_64: the frame is described from the stores on, and stays
 * true after sp is swapped (the other context's frame has the same layout),
 * so a debugger unwinds either context from in here; tools/tide-gdb.py
 * points sp at a task's saved frame and pc at tide__ctx_switch_resume. */
FUNC(tide__ctx_switch)
    .cfi_startproc
    sub     sp, sp, #176
    .cfi_def_cfa_offset 176
    stp     x19, x20, [sp, #0]
    .cfi_offset x19, -176
    .cfi_offset x20, -168
    stp     x21, x22, [sp, #16]
    .cfi_offset x21, -160
    .cfi_offset x22, -152
    stp     x23, x24, [sp, #32]
    .cfi_offset x23, -144
    .cfi_offset x24, -136
    stp     x25, x26, [sp, #48]
    .cfi_offset x25, -128
    .cfi_offset x26, -120
    stp     x27, x28, [sp, #64]
    .cfi_offset x27, -112
    .cfi_offset x28, -104
    stp     x29, x30, [sp, #80]
    .cfi_offset x29, -96
    .cfi_offset x30, -88
    stp     d8, d9, [sp, #96]
    .cfi_offset d8, -80
    .cfi_offset d9, -72
    stp     d10, d11, [sp, #112]
    .cfi_offset d10, -64
    .cfi_offset d11, -56
    stp     d12, d13, [sp, #128]
    .cfi_offset d12, -48
    .cfi_offset d13, -40
    stp     d14, d15, [sp, #144]
    .cfi_offset d14, -32
    .cfi_offset d15, -24
    mrs     x9, fpcr
    str     x9, [sp, #160]
    mov     x9, sp
    str     x9, [x0]            /* from->sp */
    ldr     x9, [x1]            /* to->sp */
    mov     sp, x9
    .globl  SYM(tide__ctx_switch_resume)
#if !defined(__APPLE__)
    .hidden SYM(tide__ctx_switch_resume)
#endif
SYM(tide__ctx_switch_resume):       /* a saved context, as seen from inside */
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
    .cfi_def_cfa_offset 0
    .cfi_restore x19
    .cfi_restore x20
    .cfi_restore x21
    .cfi_restore x22
    .cfi_restore x23
    .cfi_restore x24
    .cfi_restore x25
    .cfi_restore x26
    .cfi_restore x27
    .cfi_restore x28
    .cfi_restore x29
    .cfi_restore x30
    .cfi_restore d8
    .cfi_restore d9
    .cfi_restore d10
    .cfi_restore d11
    .cfi_restore d12
    .cfi_restore d13
    .cfi_restore d14
    .cfi_restore d15
    ret
    .cfi_endproc
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
