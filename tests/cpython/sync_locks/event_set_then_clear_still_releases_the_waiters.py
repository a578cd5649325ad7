# The Python twin of `event_set_then_clear_still_releases_the_waiters` in
# tests/sync_locks.rs (CPython's test_locks.py EventTests.test_clear_with_waiters).

from prelude import *

async def main():
    ev = asyncio.Event()
    result = []

    async def c():
        await ev.wait()
        result.append(1)
        log("c woke")

    t = asyncio.create_task(c())
    await asyncio.sleep(0)
    ev.set()
    ev.clear()
    log(f"set and cleared: is_set {ev.is_set()}")
    ev.set()
    ev.set()
    log(f"set twice more: waiters {len(ev._waiters)}")
    await asyncio.sleep(0)
    log(f"result {result}, waiters {len(ev._waiters)}, done {t.done()}")

go(main)
