# SPDX-License-Identifier: Apache-2.0
# goro's gdb commands, for a live process or a core file (docs/diagnostics.md, "gdb script"):
#
#   info goro-fibers      every live fiber of every runtime: id, state, what it waits on, where
#                         it was spawned; then the plain threads blocked in goro (goro::dump's
#                         information, without the stacks)
#   goro-fiber N bt       the backtrace of fiber N where it is parked (or, if it runs, of the
#                         thread that runs it)
#
# Load it with `source /usr/share/goro/gdb/goro.py` (or from the source tree, gdb/goro.py).
#
# It reads the inferior's memory only and calls no function in it, so it works on a core file.
# It walks what scheduler::for_each_fiber walks: the census's schedulers, each one's stack
# pool's slabs, the fiber record at the top of each stack. The offsets come from the constant
# `goro_debugger_layout` (src/sched/census.cpp), found in the symbol table, not from the debug
# information: a program linked with a release libgoro (no -g) works as long as it is not
# stripped. The backtrace of a parked fiber starts from the registers Boost.Context's
# jump_fcontext saved on the fiber's stack (x86-64: at fctx the MXCSR and x87 control word,
# then r12, r13, r14, r15, rbx, rbp and the return address; the stack pointer after the return
# is fctx + 0x40), given to gdb by a Python unwinder as the caller of the selected thread's
# innermost frame; gdb unwinds the rest by the CFI, as for any thread.
import struct

import gdb
import gdb.unwinder

# goro_debugger_layout_v1's fields, in order (src/sched/census.cpp).
LAYOUT_VERSION = 1
LAYOUT_FIELDS = (
    "version words census coarse_clock_ms census_schedulers census_blocked scheduler_workers "
    "scheduler_stacks pool_slabs slab_size slab_base pool_stride pool_below pool_per_slab "
    "pool_stack_size pool_compact colour_line colour_page colours fiber_size fiber_align "
    "fiber_fctx fiber_sched fiber_id fiber_stack_low fiber_stack_size fiber_state fiber_site "
    "site_is_pointer site_file site_function site_line fiber_waiting_on fiber_wait_object "
    "fiber_wait_since reason_what reason_object_is_fd blocked_why blocked_object blocked_tid "
    "blocked_since blocked_next"
).split()
STATES = ("created", "runnable", "running", "parked", "finished")
FINISHED = 4
MAX_FRAMES = 64


class Layout:
    def __init__(self, words):
        for name, value in zip(LAYOUT_FIELDS, words):
            setattr(self, name, value)


def _memory(address, size):
    return bytes(gdb.selected_inferior().read_memory(address, size))


def _u64(address):
    return struct.unpack("<Q", _memory(address, 8))[0]


def _cstring(address, limit=512):
    if address == 0:
        return ""
    out = b""
    while len(out) < limit:
        try:
            chunk = _memory(address + len(out), 64)
        except gdb.MemoryError:
            break
        end = chunk.find(b"\0")
        if end >= 0:
            return (out + chunk[:end]).decode("utf-8", "replace")
        out += chunk
    return out.decode("utf-8", "replace")


def _layout():
    try:
        address = int(gdb.parse_and_eval("&goro_debugger_layout"))
    except gdb.error:
        raise gdb.GdbError(
            "goro: no symbol goro_debugger_layout: is the program linked with goro and not "
            "stripped, and is it loaded (a running process or a core file)?"
        )
    version, words = struct.unpack("<QQ", _memory(address, 16))
    if version != LAYOUT_VERSION:
        raise gdb.GdbError(
            "goro: this program's goro has debugger layout version %d; this script reads "
            "version %d: use the gdb/goro.py of the goro it was built with" % (version, LAYOUT_VERSION)
        )
    return Layout(struct.unpack("<%dQ" % words, _memory(address, 8 * words)))


class Fiber:
    pass


def _read_fiber(l, sched, record):
    """The fiber whose record lies at `record`, or None if the slot holds none of sched's."""
    raw = _memory(record, l.fiber_size)

    def word(offset):
        return struct.unpack_from("<Q", raw, offset)[0]

    if word(l.fiber_sched) != sched:
        return None
    f = Fiber()
    f.record = record
    f.sched = sched
    f.id = word(l.fiber_id)
    f.low = word(l.fiber_stack_low)
    f.size = word(l.fiber_stack_size)
    f.state = raw[l.fiber_state]
    f.fctx = word(l.fiber_fctx)
    if l.site_is_pointer:
        site = word(l.fiber_site)
        if site:
            f.file = _cstring(_u64(site + l.site_file))
            f.function = _cstring(_u64(site + l.site_function))
            f.line = struct.unpack("<I", _memory(site + l.site_line, 4))[0]
        else:
            f.file, f.function, f.line = "?", "?", 0
    else:
        f.file = _cstring(word(l.fiber_site + l.site_file))
        f.function = _cstring(word(l.fiber_site + l.site_function))
        f.line = struct.unpack_from("<I", raw, l.fiber_site + l.site_line)[0]
    f.why = word(l.fiber_waiting_on)
    f.object = word(l.fiber_wait_object)
    f.since = word(l.fiber_wait_since)
    return f


def _record_address(l, low, size, compact):
    colour = 0 if compact else ((low // l.colour_page) % l.colours) * l.colour_line
    return (low + size - colour - l.fiber_size) & ~(l.fiber_align - 1)


def _schedulers(l):
    begin = _u64(l.census + l.census_schedulers)
    end = _u64(l.census + l.census_schedulers + 8)
    return [_u64(at) for at in range(begin, end, 8)]


def _fibers(l, sched):
    """The live fibers of one scheduler, by id, as scheduler::for_each_fiber finds them."""
    pool = sched + l.scheduler_stacks
    stride = _u64(pool + l.pool_stride)
    below = _u64(pool + l.pool_below)
    per_slab = _u64(pool + l.pool_per_slab)
    stack_size = _u64(pool + l.pool_stack_size)
    compact = _memory(pool + l.pool_compact, 1)[0] != 0
    begin = _u64(pool + l.pool_slabs)
    end = _u64(pool + l.pool_slabs + 8)
    found = []
    for slab in range(begin, end, l.slab_size):
        base = _u64(slab + l.slab_base)
        for i in range(per_slab):
            low = base + i * stride + below
            try:
                f = _read_fiber(l, sched, _record_address(l, low, stack_size, compact))
            except gdb.MemoryError:
                continue
            if f is None or f.low != low or f.state == FINISHED:
                continue
            found.append(f)
    found.sort(key=lambda f: f.id)
    return found


def _all_fibers(l):
    return [(sched, _fibers(l, sched)) for sched in _schedulers(l)]


def _wait_text(l, why, obj, since, now):
    if why == 0:
        text = "waiting"
    else:
        text = _cstring(_u64(why + l.reason_what))
    if why != 0 and _memory(why + l.reason_object_is_fd, 1)[0]:
        text += " fd %d" % struct.unpack("<q", struct.pack("<Q", obj))[0]
    elif obj != 0:
        text += " 0x%x" % obj
    if now >= since:
        text += ", %.1f s" % ((now - since) / 1000.0)
    return text


def _thread_sp(thread):
    """The stack pointer of `thread`'s innermost frame (selects the thread)."""
    thread.switch()
    return int(gdb.newest_frame().read_register("rsp"))


def _running_thread(f):
    """The gdb thread whose stack pointer lies in f's stack, or None."""
    inferior = gdb.selected_inferior()
    selected = gdb.selected_thread()
    try:
        for thread in inferior.threads():
            try:
                sp = _thread_sp(thread)
            except gdb.error:
                continue
            if f.low <= sp < f.low + f.size:
                return thread
    finally:
        if selected is not None and selected.is_valid():
            selected.switch()
    return None


def _thread_name(thread):
    return "thread %d (LWP %d)" % (thread.num, thread.ptid[1])


def _state_text(l, f, now):
    """"parked: chan receive 0x..., 2.0 s", "running on thread 3 (LWP 123)", "runnable"."""
    state = STATES[f.state] if f.state < len(STATES) else "state %d" % f.state
    if f.state == 3:
        state += ": " + _wait_text(l, f.why, f.object, f.since, now)
    elif f.state == 2:
        thread = _running_thread(f)
        if thread is not None:
            state += " on " + _thread_name(thread)
    return state


class InfoGoroFibers(gdb.Command):
    """List every live goro fiber: id, state, what it waits on, where it was spawned.
Then the plain threads blocked in a goro call. Reads memory only: works on a core file."""

    def __init__(self):
        super().__init__("info goro-fibers", gdb.COMMAND_STATUS)

    def invoke(self, argument, from_tty):
        l = _layout()
        now = _u64(l.coarse_clock_ms)
        runtimes = _all_fibers(l)
        if not runtimes:
            print("goro: no runtime")
        for sched, fibers in runtimes:
            begin = _u64(sched + l.scheduler_workers)
            end = _u64(sched + l.scheduler_workers + 8)
            print("runtime 0x%x (%d workers, %d fibers):" % (sched, (end - begin) // 8, len(fibers)))
            for f in fibers:
                print("fiber %d [%s]" % (f.id, _state_text(l, f, now)))
                print("\tcreated at %s:%d in %s" % (f.file, f.line, f.function))
        blocked = _u64(l.census + l.census_blocked)
        pid = gdb.selected_inferior().pid
        while blocked != 0:
            tid = struct.unpack("<q", _memory(blocked + l.blocked_tid, 8))[0]
            why = _u64(blocked + l.blocked_why)
            obj = _u64(blocked + l.blocked_object)
            since = _u64(blocked + l.blocked_since)
            main = " (main)" if tid == pid else ""
            print("thread %d%s [blocked: %s]" % (tid, main, _wait_text(l, why, obj, since, now)))
            blocked = _u64(blocked + l.blocked_next)


class _FrameId:
    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


class FiberUnwinder(gdb.unwinder.Unwinder):
    """While `saved` is set, makes the fiber's saved registers the caller of the innermost real
    frame of the selected thread (the first gdb asks a Python unwinder about: inline frames
    come before it); `level` is then that frame's level, and the fiber's frames are above it."""

    def __init__(self):
        super().__init__("goro-fiber")
        self.saved = None
        self.level = None

    def __call__(self, pending_frame):
        if self.saved is None:
            return None
        if self.level is None:
            self.level = pending_frame.level()
        if pending_frame.level() != self.level:
            return None
        sp = pending_frame.read_register("rsp")
        pc = pending_frame.read_register("rip")
        # gdb stops a backtrace whose caller's stack lies below its callee's ("previous frame
        # inner to this frame"), as a fiber's stack may lie below the thread's: the frame made
        # the fiber's caller takes the fiber's stack pointer as its identity.
        identity = gdb.Value(self.saved["rsp"] - 8).cast(sp.type)
        info = pending_frame.create_unwind_info(_FrameId(identity, pc))
        for name, value in self.saved.items():
            kind = (pc if name == "rip" else sp).type
            info.add_saved_register(name, gdb.Value(value).cast(kind))
        return info


_unwinder = FiberUnwinder()
gdb.unwinder.register_unwinder(None, _unwinder, replace=True)


def _saved_registers(fctx):
    words = struct.unpack("<8Q", _memory(fctx, 64))
    return {
        "r12": words[1],
        "r13": words[2],
        "r14": words[3],
        "r15": words[4],
        "rbx": words[5],
        "rbp": words[6],
        "rip": words[7],
        "rsp": fctx + 0x40,
    }


def _print_frames(frame, low, high, first_level):
    level = first_level
    while frame is not None and level - first_level < MAX_FRAMES:
        try:
            sp = int(frame.read_register("rsp"))
        except gdb.error:
            break
        if low is not None and not low <= sp <= high:
            break  # beyond the fiber's entry frame
        if frame.pc() == 0:
            break
        name = frame.name() or "??"
        where = ""
        sal = frame.find_sal()
        if sal is not None and sal.symtab is not None and sal.line:
            where = " at %s:%d" % (sal.symtab.filename, sal.line)
        print("#%-3d 0x%016x in %s%s" % (level - first_level, frame.pc(), name, where))
        try:
            frame = frame.older()
        except gdb.error as e:
            print("(backtrace stopped: %s)" % e)
            break
        level += 1


class GoroFiber(gdb.Command):
    """goro-fiber N bt: the backtrace of goro fiber N (ids as `info goro-fibers` lists them).
A parked or runnable fiber's stack is walked from the registers saved when it was switched
away from; a running fiber's is its thread's. Works on a core file."""

    def __init__(self):
        super().__init__("goro-fiber", gdb.COMMAND_STACK)

    def invoke(self, argument, from_tty):
        args = gdb.string_to_argv(argument)
        if len(args) != 2 or args[1] != "bt" or not args[0].isdigit():
            raise gdb.GdbError("usage: goro-fiber N bt")
        wanted = int(args[0])
        l = _layout()
        matches = [f for _, fibers in _all_fibers(l) for f in fibers if f.id == wanted]
        if not matches:
            raise gdb.GdbError("goro: no live fiber %d (see info goro-fibers)" % wanted)
        for f in matches:
            self._backtrace(f, _state_text(l, f, _u64(l.coarse_clock_ms)))

    def _backtrace(self, f, state):
        if f.state == 0:
            print("fiber %d has not started: no stack yet" % f.id)
            return
        if f.state == 2:
            thread = _running_thread(f)
            if thread is None:
                print("fiber %d is running, on no thread whose stack pointer is in its stack" % f.id)
                return
            print("fiber %d is running on %s:" % (f.id, _thread_name(thread)))
            selected = gdb.selected_thread()
            thread.switch()
            try:
                _print_frames(gdb.newest_frame(), f.low, f.low + f.size, 0)
            finally:
                selected.switch()
            return
        if not f.low <= f.fctx < f.low + f.size:
            print("fiber %d [%s]: no saved context in its stack" % (f.id, state))
            return
        print("fiber %d [%s]:" % (f.id, state))
        if gdb.selected_thread() is None:
            raise gdb.GdbError("goro: no thread to unwind from (is the process running?)")
        _unwinder.saved = _saved_registers(f.fctx)
        _unwinder.level = None
        gdb.invalidate_cached_frames()
        try:
            frame = gdb.newest_frame()
            while frame is not None and (_unwinder.level is None or frame.level() < _unwinder.level):
                frame = frame.older()
            if frame is None or frame.level() != _unwinder.level:
                raise gdb.GdbError("goro: could not start the fiber's backtrace")
            _print_frames(frame.older(), f.low, f.low + f.size, frame.level() + 1)
        finally:
            _unwinder.saved = None
            _unwinder.level = None
            gdb.invalidate_cached_frames()


InfoGoroFibers()
GoroFiber()
