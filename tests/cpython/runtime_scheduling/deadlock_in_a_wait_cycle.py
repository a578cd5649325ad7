# The Python twin of `deadlock_in_a_wait_cycle` in tests/runtime_scheduling.rs.
# The shutdown cancels the stuck tasks, so their `finally` runs.
#
# Run by go(main) alone, CPython 3.11 prints:
#
#     0.0 b cleanup
#     0.0 a cleanup
#     raised Deadlock(a waits on <Future pending ...>; b waits on <Future
#         pending ...>; main waits on <Task pending name='a' ...)
#     end 0.0

import contextlib, io

from prelude import *

async def main():
    asyncio.current_task().set_name("main")
    cell = {}
    async def fa():
        try:
            await asyncio.wait([cell["b"]])
        finally:
            log("a cleanup")
    async def fb():
        try:
            await asyncio.wait([cell["a"]])
        finally:
            log("b cleanup")
    cell["a"] = asyncio.create_task(fa(), name="a")
    cell["b"] = asyncio.create_task(fb(), name="b")
    await cell["a"]

# The Rust test checks the outcome and the final time on their own, and
# compares the log lines sorted: the order of the two cleanups is a set's
# order here.
out = io.StringIO()
with contextlib.redirect_stdout(out):
    go(main)
*trace, outcome, end = out.getvalue().splitlines()
assert outcome.startswith("raised Deadlock("), outcome
assert end == "end 0.0", end
print(*sorted(trace), sep="\n")
