# The Python twin of `event_wait_on_a_set_event_does_not_yield` in
# tests/sync_locks.rs (CPython's test_locks.py EventTests.test_wait_on_set).

from prelude import *

async def main():
    ev = asyncio.Event()
    ev.set()
    started = []

    async def other():
        started.append(True)

    t = asyncio.create_task(other())
    await ev.wait()
    log(f"wait returned; other started: {bool(started)}")
    await t
    log(f"other started: {bool(started)}")

go(main)
