"""Runs a seed program on CPython's own event loop with virtual time.

    python3 virtual_clock.py <program.py> [args...]

The selector never blocks: a wait of `timeout` seconds advances a virtual
clock instead, which `loop.time()`, `time.time()` and `time.perf_counter()`
all read, and a blocking `time.sleep(s)` advances it by `s` at once. This is the precedent of CPython's test loop
(Lib/test/test_asyncio/utils.py, TestLoop), and it lets the recorded
outputs be produced and re-checked without sleeping on the real clock.
Programs whose timers share a deadline would fire them in heap order here
(docs/semantics.md, "Deliberate differences"); the seed programs print
nothing that depends on it.
"""

import asyncio
import runpy
import selectors
import sys
import time

now = 0.0


def virtual_time():
    return now


class VirtualSelector(selectors.DefaultSelector):
    def select(self, timeout=None):
        global now
        if timeout is None:
            raise RuntimeError("deadlock: the loop would block forever")
        now += timeout
        return super().select(0)


class VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self):
        super().__init__(VirtualSelector())

    def time(self):
        return now


class VirtualPolicy(asyncio.DefaultEventLoopPolicy):
    def new_event_loop(self):
        return VirtualLoop()


asyncio.set_event_loop_policy(VirtualPolicy())
def virtual_sleep(seconds):
    global now
    now += seconds


time.time = virtual_time
time.perf_counter = virtual_time
time.sleep = virtual_sleep
program = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(program, run_name="__main__")
