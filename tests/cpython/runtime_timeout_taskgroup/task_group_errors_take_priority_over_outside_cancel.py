# The Python twin of `task_group_errors_take_priority_over_outside_cancel` in tests/runtime_timeout_taskgroup.rs.

from prelude import *

async def bad_cleanup():
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        await asyncio.sleep(1)
        log("a cleanup fails")
        raise Boom("a cleanup")

async def runner():
    async with asyncio.TaskGroup() as tg:
        tg.create_task(bad_cleanup())
        await asyncio.sleep(10)

async def main():
    r = asyncio.create_task(runner())
    await asyncio.sleep(1)
    r.cancel()
    try:
        await r
    except BaseExceptionGroup as e:
        log(f"runner raised {ex(e)}, cancelled={r.cancelled()}")
    return 0

go(main)
