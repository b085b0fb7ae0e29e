# tide's gdb commands: see inside a program's tasks, live or in a core file.
#
#   (gdb) source /path/to/tide-gdb.py     (installed next to libtide.so as
#                                          libtide.so.<version>-gdb.py: gdb
#                                          auto-loads it where allowed)
#   (gdb) tide tasks        every task of every loop: id, name, state, what it
#                           waits on, since when, and its innermost frame
#   (gdb) tide bt ID        the backtrace of task ID
#
# Needs the debug info of libtide (the default build has it: -O2 -g).  The
# loops are found through tide__all_loops (src/debug.c).  `tide bt` of a
# suspended task points the registers at the task's saved context (the
# stack pointer at its saved frame, the pc at tide__ctx_switch_resume, whose
# CFI describes that frame) and lets gdb unwind with DWARF; the registers
# are put back afterwards.  Where registers cannot be written (a core file
# on some gdb versions), it walks the frame pointers instead and names each
# frame with gdb's symbols and line tables.

import os

import gdb

STATES = ["created", "ready", "running", "waiting", "done"]
WAITS = ["none", "sleep", "fd-read", "fd-write", "lock", "event", "condition",
         "semaphore", "barrier", "queue-put", "queue-get", "queue-join",
         "future", "task", "group", "wait-tasks", "pool-job", "process",
         "signal", "stream-drain", "server", "connect", "loop-call"]


def _loops():
    try:
        loop = gdb.parse_and_eval("tide__all_loops")
    except gdb.error:
        raise gdb.GdbError("tide: no tide__all_loops here (libtide without debug info?)")
    while int(loop) != 0:
        yield loop
        loop = loop["dbg"]["gnext"]


def _tasks():
    for loop in _loops():
        t = loop["tasks"]["head"]
        while int(t) != 0:
            yield loop, t
            t = t["next"]


def _name(t):
    try:
        n = t["name"].string()
    except gdb.error:
        n = ""
    return n or "task-%d" % int(t["id"])


def _now_ns(loop):
    return int(loop["now"])


def _ptr_size():
    return gdb.lookup_type("void").pointer().sizeof


def _read_ptr(addr):
    inf = gdb.selected_inferior()
    size = _ptr_size()
    mem = inf.read_memory(addr, size)
    return int.from_bytes(bytes(mem), "little")


def _arch():
    return gdb.selected_frame().architecture().name()


def _saved(t):
    """(pc, fp, sp) of a switched-out task, from its saved frame."""
    sp = int(t["ctx"]["sp"])
    if sp == 0:
        return None
    if "aarch64" in _arch():
        return _read_ptr(sp + 88), _read_ptr(sp + 80), sp
    return _read_ptr(sp + 56), _read_ptr(sp + 48), sp


def _fp_frames(t, pc, fp, limit=48):
    lo = int(t["stack_lo"])
    hi = int(t.cast(gdb.lookup_type("char").pointer()))
    out = [pc]
    size = _ptr_size()
    while len(out) < limit and lo <= fp and fp + 2 * size <= hi and fp % size == 0:
        nxt = _read_ptr(fp)
        ret = _read_ptr(fp + size)
        if ret < 4096:
            break
        out.append(ret)
        if nxt <= fp:
            break
        fp = nxt
    return out


def _describe(pc, caller):
    look = pc - 1 if caller else pc
    block = gdb.block_for_pc(look)
    fn = None
    while block is not None:
        if block.function is not None:
            fn = block.function.print_name
            break
        block = block.superblock
    if fn is None:
        fn = gdb.execute("info symbol %d" % look, to_string=True).split(" in ")[0].strip()
        if fn.startswith("No symbol"):
            fn = "??"
    sal = gdb.find_pc_line(look)
    where = ""
    if sal.symtab is not None:
        where = " at %s:%d" % (sal.symtab.filename, sal.line)
    return "0x%x in %s%s" % (pc, fn, where)


def _first_frame(t):
    """The innermost frame outside tide's own code, for the task list."""
    s = _saved(t) if int(t["state"]) != 2 else None
    if s is None:
        return ""
    for i, pc in enumerate(_fp_frames(t, s[0], s[1])):
        d = _describe(pc, i > 0)
        name = d.split(" in ", 1)[1]
        if not name.startswith("tide") and not name.startswith("task_entry") \
                and not name.startswith("join") and not name.startswith("??"):
            return " in " + name
    return ""


class TidePrefix(gdb.Command):
    """tide's commands: tide tasks, tide bt ID."""

    def __init__(self):
        super().__init__("tide", gdb.COMMAND_STACK, gdb.COMPLETE_NONE, True)


# Waits whose object is found from the waiter in the unlink argument
# (src/sync.c's waitlists): kind -> the primitive's type.
_WAITLIST_TYPES = {4: "tide_lock", 5: "tide_event", 6: "tide_cond", 7: "tide_sem"}


def _function_at(pc):
    """(source file, function name) of the function at pc, or None."""
    try:
        block = gdb.block_for_pc(pc)
        fn = None
        while block is not None:  # the outermost function: not one inlined into it
            if block.function is not None:
                fn = block.function
            block = block.superblock
        if fn is None:
            return None
        return fn.symtab.filename, fn.name
    except (RuntimeError, AttributeError):
        return None


def _wait_of(t):
    """(kind, object address, tide__fd pointer or None), as src/dump.c's
    wait_of: fd waits keep their tide__fd in unlink_arg, sync.c's waitlist
    waits their waiter, the others the object in wait_obj."""
    kind = int(t["wait_kind"])
    arg = t["unlink_arg"]
    if kind in (2, 3, 4, 5, 6, 7):
        # The kind is trusted only with the unlink function it implies (a
        # kind an earlier wait left shows as "none", as in src/dump.c).
        want = ("io.c", ("unlink_reader", "unlink_writer")) if kind in (2, 3) \
            else ("sync.c", ("unlink_waiter",))
        fn = _function_at(int(t["unlink"]))
        if fn is None or fn[1] not in want[1] or os.path.basename(fn[0]) != want[0] or not int(arg):
            return 0, 0, None
    if kind in (2, 3):
        fdp = arg.cast(gdb.lookup_type("tide__fd").pointer())
        if kind == 2 and int(fdp["sigwait"]):
            return 18, int(fdp["sigwait"]), None  # tide_signal_wait: "signal"
        return kind, int(arg), fdp
    if kind in _WAITLIST_TYPES:
        w = arg.cast(gdb.lookup_type("struct tide__waiter").pointer())
        lst = int(w["list"])
        off = gdb.lookup_type(_WAITLIST_TYPES[kind])["waiters"].bitpos // 8
        return kind, (lst - off if lst else 0), None
    return kind, int(t["wait_obj"]), None


class TideTasks(gdb.Command):
    """List every task of every tide loop: id, name, state, wait reason, frame."""

    def __init__(self):
        super().__init__("tide tasks", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        n = 0
        for loop, t in _tasks():
            state = int(t["state"])
            line = "task %d \"%s\" %s" % (int(t["id"]), _name(t),
                                          STATES[state] if state < len(STATES) else "?")
            if state == 3:
                kind, obj, fdp = _wait_of(t)
                line += " on %s" % (WAITS[kind] if kind < len(WAITS) else "?")
                if fdp is not None:
                    line += " fd %d" % int(fdp["fd"])
                elif obj:
                    line += " 0x%x" % obj
                line += " for %d ms" % ((_now_ns(loop) - int(t["wait_since"])) // 1000000)
            if int(t["cancel_req"]):
                line += ", cancelled"
            if int(t["parent_id"]):
                line += ", parent task %d" % int(t["parent_id"])
            line += _first_frame(t)
            gdb.write("loop 0x%x: %s\n" % (int(loop), line))
            n += 1
        if n == 0:
            gdb.write("tide: no tasks\n")


def _find(task_id):
    for loop, t in _tasks():
        if int(t["id"]) == task_id:
            return t
    raise gdb.GdbError("tide: no task %d" % task_id)


class TideBt(gdb.Command):
    """Backtrace of a tide task: tide bt ID."""

    def __init__(self):
        super().__init__("tide bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        try:
            task_id = int(arg.split()[0], 0)
        except (ValueError, IndexError):
            raise gdb.GdbError("usage: tide bt ID")
        t = _find(task_id)
        state = int(t["state"])
        gdb.write("task %d \"%s\" %s\n" % (task_id, _name(t), STATES[state]))
        if state == 2:
            gdb.execute("backtrace")  # running: its frames are the thread's
            return
        s = _saved(t)
        if s is None or state == 4:
            gdb.write("(no saved context: not started or ended)\n")
            return
        if not self._switch_bt(s[2]):
            for i, pc in enumerate(_fp_frames(t, s[0], s[1])):
                gdb.write("#%-2d %s\n" % (i, _describe(pc, i > 0)))

    def _switch_bt(self, sp):
        aarch64 = "aarch64" in _arch()
        regs = ["$pc", "$sp"] + (["$x29", "$x30"] if aarch64 else ["$rbp"])
        try:
            resume = int(gdb.parse_and_eval("(long)&tide__ctx_switch_resume"))
        except gdb.error:
            return False
        gdb.execute("select-frame 0")
        saved = {r: int(gdb.parse_and_eval("(long)" + r)) for r in regs}
        try:
            gdb.execute("set $sp = %d" % sp)
            gdb.execute("set $pc = %d" % resume)
        except gdb.error:
            return False
        try:
            out = gdb.execute("backtrace", to_string=True)
            gdb.write(out)
        finally:
            for r in regs:
                try:
                    gdb.execute("set %s = %d" % (r, saved[r]))
                except gdb.error:
                    pass
            gdb.execute("select-frame 0")
        return True


TidePrefix()
TideTasks()
TideBt()
