"""The prelude of the Python programs under tests/cpython/runtime_*/.

Each program starts with `from prelude import *` (tests/cpython_programs.rs
runs it with this directory on PYTHONPATH). It runs asyncio on a virtual
clock: the selector never blocks, a wait of `timeout` seconds moves the
loop's time forward instead, as gencoro's `Clock::virtual_time()` does. Timers
with equal deadlines fire first in, first out (the `(when, seq)` rule of
docs/semantics.md, "Deliberate differences"; CPython's heap orders by `when`
alone). A loop that would block forever raises `Deadlock`, naming what each
task waits on.

`log`, `ex`, `go` and `Boom` have Rust twins of the same names in
tests/common/mod.rs, so a program and its Rust test print the same lines.
"""

import asyncio, heapq, itertools
from asyncio import events

_seq = itertools.count()

class _Timer(events.TimerHandle):
    __slots__ = ("_seq",)
    def __init__(self, when, *args):
        super().__init__(round(when, 6), *args)
        self._seq = next(_seq)
    def __lt__(self, other):
        return (self._when, self._seq) < (other._when, other._seq)

class Deadlock(Exception):
    pass

class _VirtualSelector:
    """select(timeout) lets virtual time pass instead of blocking."""
    def __init__(self, loop, inner):
        self._loop, self._inner = loop, inner
    def select(self, timeout=None):
        if timeout is None:
            lines = sorted(f"{t.get_name()} waits on {t._fut_waiter!r:.40}"
                           for t in asyncio.all_tasks(self._loop))
            raise Deadlock("; ".join(lines))
        self._loop._now = round(self._loop._now + timeout, 9)
        return self._inner.select(0)
    def __getattr__(self, name):
        return getattr(self._inner, name)

class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self):
        self._now = 0.0
        super().__init__()
        self._selector = _VirtualSelector(self, self._selector)
        global LOOP
        LOOP = self
    def time(self):
        return self._now
    def call_at(self, when, callback, *args, context=None):
        self._check_closed()
        timer = _Timer(when, callback, args, self, context)
        heapq.heappush(self._scheduled, timer)
        timer._scheduled = True
        return timer

class _Policy(asyncio.DefaultEventLoopPolicy):
    def new_event_loop(self):
        return VirtualLoop()
asyncio.set_event_loop_policy(_Policy())

LOOP = None

class Boom(Exception):
    pass

def now():
    return f"{asyncio.get_running_loop().time():.1f}"

def log(s):
    print(f"{now()} {s}")

def ex(e):
    """An exception as the Rust tests print an Error."""
    if isinstance(e, BaseExceptionGroup):
        return "ExceptionGroup[" + ", ".join(ex(x) for x in e.exceptions) + "]"
    if isinstance(e, asyncio.CancelledError):
        return f"CancelledError({e.args[0] if e.args else ''})"
    if isinstance(e, TimeoutError):
        return "TimeoutError"
    return f"{type(e).__name__}({e})"

def py(v):
    return repr(v) if isinstance(v, str) else str(v)

def go(main):
    """asyncio.run(main()), then its outcome and the final loop time."""
    try:
        r = asyncio.run(main())
        print(f"result {r}")
    except BaseException as e:
        print(f"raised {ex(e)}")
    print(f"end {LOOP.time():.1f}")
