# The Python twin of `deadlock_stuck_stacks_are_dropped_once` in tests/runtime_scheduling.rs.
# The `finally` runs when the coroutines are garbage-collected, with no loop left, so
# its `log` fails there.
#
# Run by go(main) alone, CPython 3.11 prints:
#
#     0.0 b ignores the cancellation
#     0.0 a ignores the cancellation
#     raised Deadlock(a waits on <Future pending ...>; b waits on <Future
#         pending ...>; main waits on <Task cancelling name='a' ...)
#     end 0.0

import contextlib, io

from prelude import *

async def stubborn(name, other):
    try:
        while True:
            try:
                await asyncio.wait([other()])
                return
            except asyncio.CancelledError:
                log(f"{name} ignores the cancellation")
    finally:
        log(f"{name} dropped")

async def main():
    asyncio.current_task().set_name("main")
    cell = {}
    cell["a"] = asyncio.create_task(stubborn("a", lambda: cell["b"]), name="a")
    cell["b"] = asyncio.create_task(stubborn("b", lambda: cell["a"]), name="b")
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
