/*
 * Context switch for x86_64 (System V ABI).
 *
 * A suspended context is a stack pointer; the stack holds, from that pointer
 * up: MXCSR (4 bytes) and the x87 control word (2 bytes, padded to 8), then
 * r15, r14, r13, r12, rbx, rbp, and the address to resume at.  Only the
 * callee-saved state is kept: the caller of tide__ctx_switch has already
 * saved everything else, as for any call.
 *
 * The switch resumes with "pop; jmp *reg" rather than "ret": the return stack
 * buffer of the CPU predicts a ret to go back to the last call site, which is
 * wrong after a stack switch, and the misprediction was measured to make the
 * switch 3-4x slower.
 */
#if defined(__APPLE__)
#define SYM(x) _##x
#define FUNC(x) .globl SYM(x); .private_extern SYM(x); .p2align 4; SYM(x):
#define END(x)
#else
#define SYM(x) x
#define FUNC(x) .globl x; .hidden x; .type x, @function; .p2align 4; x:
#define END(x) .size x, . - x
#endif

    .text

/* void tide__ctx_switch(tide__ctx *from, tide__ctx *to)
 *
 * CFI: from the pushes on, the frame is described as any function's, and
 * the description stays true after the stack pointer is swapped, since the
 * other context's frame has the same layout.  So a debugger stopped anywhere
 * in here unwinds the context being left or the one being resumed, and
 * tools/tide-gdb.py unwinds a suspended task by pointing rsp at its saved
 * frame and the pc at tide__ctx_switch_resume. */
FUNC(tide__ctx_switch)
    .cfi_startproc
    pushq   %rbp
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbp, 0
    pushq   %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbx, 0
    pushq   %r12
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r12, 0
    pushq   %r13
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r13, 0
    pushq   %r14
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r14, 0
    pushq   %r15
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r15, 0
    leaq    -8(%rsp), %rsp
    .cfi_adjust_cfa_offset 8
    stmxcsr (%rsp)
    fnstcw  4(%rsp)
    movq    %rsp, (%rdi)        /* from->sp */
    movq    (%rsi), %rsp        /* to->sp */
    .globl  SYM(tide__ctx_switch_resume)
#if !defined(__APPLE__)
    .hidden SYM(tide__ctx_switch_resume)
#endif
SYM(tide__ctx_switch_resume):       /* a saved context, as seen from inside */
    ldmxcsr (%rsp)
    fldcw   4(%rsp)
    leaq    8(%rsp), %rsp
    .cfi_adjust_cfa_offset -8
    popq    %r15
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r15
    popq    %r14
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r14
    popq    %r13
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r13
    popq    %r12
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r12
    popq    %rbx
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbx
    popq    %rbp
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbp
    popq    %rcx
    .cfi_adjust_cfa_offset -8
    .cfi_register %rip, %rcx
    jmpq    *%rcx
    .cfi_endproc
END(tide__ctx_switch)

/*
 * void tide__ctx_make(tide__ctx *c, void *lo, size_t size,
 *                     void (*entry)(void *), void *arg)
 * Builds a frame as tide__ctx_switch leaves it, resuming at the trampoline
 * with r12 = entry and r13 = arg.  After the switch pops the frame, rsp is
 * 16-byte aligned, so the trampoline's call leaves entry with rsp % 16 == 8
 * as the ABI requires.  The new context inherits the caller's MXCSR and x87
 * control word.
 */
FUNC(tide__ctx_make)
    leaq    (%rsi,%rdx), %rax
    andq    $-16, %rax
    subq    $80, %rax           /* 16 bytes of headroom + the 64-byte frame */
    stmxcsr (%rax)
    fnstcw  4(%rax)
    movw    $0, 6(%rax)
    movq    $0, 8(%rax)         /* r15 */
    movq    $0, 16(%rax)        /* r14 */
    movq    %r8, 24(%rax)       /* r13 = arg */
    movq    %rcx, 32(%rax)      /* r12 = entry */
    movq    $0, 40(%rax)        /* rbx */
    movq    $0, 48(%rax)        /* rbp: ends frame-pointer walks */
    leaq    tide__ctx_trampoline(%rip), %rcx
    movq    %rcx, 56(%rax)
    movq    %rax, (%rdi)
    ret
END(tide__ctx_make)

FUNC(tide__ctx_trampoline)
    .cfi_startproc
    .cfi_undefined rip          /* the outermost frame of a task */
    movq    %r13, %rdi
    callq   *%r12
    ud2                         /* entry never returns */
    .cfi_endproc
END(tide__ctx_trampoline)

#if defined(__linux__) && defined(__ELF__)
    .section .note.GNU-stack,"",@progbits
#endif
