# The Python twin of `timeout_around_a_task_group` in tests/runtime_timeout_taskgroup.rs.

from prelude import *

async def quiet(name, d, cleanup):
    try:
        await asyncio.sleep(d)
    except asyncio.CancelledError:
        await asyncio.sleep(cleanup)
        log(f"{name} cleanup done")
        raise
    log(f"{name} done")

async def main():
    me = asyncio.current_task()
    try:
        async with asyncio.timeout(1) as cm:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(quiet("a", 5, 0.5))
                tg.create_task(quiet("b", 5, 1))
                tg.create_task(quiet("c", 0.5, 0))
    except TimeoutError as e:
        log(f"raised {ex(e)}, expired={cm.expired()}, cancelling={me.cancelling()}")
    return 0

go(main)
