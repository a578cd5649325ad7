# The Python twin of `work_spawned_during_shutdown_is_left_pending_not_cancelled`
# in tests/runtime_shutdown.rs.
#
# CPython then reports "Task was destroyed but it is pending!" (on stderr)
# when it collects the late task; gencoro unwinds the task's stack when the
# loop is dropped, so its destructors run, which the Rust test checks on its
# own.

from prelude import *

async def ticker():
    try:
        for i in range(10):
            log(f"tick {i}")
            await asyncio.sleep(0)
    except asyncio.CancelledError:
        log("ticker cancelled")
        raise

async def sleeper():
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        LATE.append(asyncio.create_task(ticker()))
        raise

LATE = []

async def main():
    asyncio.create_task(sleeper())
    await asyncio.sleep(0)

go(main)
t = LATE[0]
print(f"late task done={t.done()} cancelled={t.cancelled()}")
