# The Python twin of `deadlock_in_a_join_cycle` in tests/runtime_scheduling.rs.
#
# A deliberate difference: CPython 3.11 recurses until RecursionError escapes
# from asyncio.run's shutdown (cancelling `a` cancels `b`, which it waits on,
# which cancels `a`, ...), where gencoro reports a deadlock. So this program's
# output is recorded in deadlock_in_a_join_cycle.expected, and
# tests/cpython_programs.rs checks it against that file, not against the Rust
# test's assertion.

from prelude import *

async def main():
    asyncio.current_task().set_name("main")
    cell = {}
    async def fa():
        await cell["b"]
    async def fb():
        await cell["a"]
    cell["a"] = asyncio.create_task(fa(), name="a")
    cell["b"] = asyncio.create_task(fb(), name="b")
    await cell["a"]

go(main)
