# The Python twin of `created_task_starts_only_when_creator_waits` in tests/runtime_scheduling.rs.

from prelude import *

started = []

async def child():
    started.append(1)
    log(f"child runs in {asyncio.current_task().get_name()}")

async def helper():
    # A plain `await coroutine` is a direct call: no scheduling, same task.
    log(f"helper runs in {asyncio.current_task().get_name()}, child started: {bool(started)}")
    return 5

async def main():
    asyncio.current_task().set_name("main")
    t = asyncio.create_task(child(), name="child")
    for i in range(2):
        log(f"main works {i}, child started: {bool(started)}")
    v = await helper()
    log(f"helper returned {v}, child started: {bool(started)}")
    await asyncio.sleep(0)
    log(f"after sleep(0), child started: {bool(started)}, done: {t.done()}")

go(main)
