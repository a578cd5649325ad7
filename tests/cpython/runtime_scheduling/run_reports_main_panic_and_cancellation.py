# The Python twin of `run_reports_main_panic_and_cancellation` in tests/runtime_scheduling.rs.
# A Rust panic in a task body is the Python exception `Panicked` here.

from prelude import *

class Panicked(Exception):  # a Rust panic in main's body
    pass

async def panicking():
    await asyncio.sleep(1)
    raise Panicked("main panicked")

async def self_cancelling():
    await asyncio.sleep(1)
    asyncio.current_task().cancel()
    await asyncio.sleep(1)

go(panicking)
go(self_cancelling)
