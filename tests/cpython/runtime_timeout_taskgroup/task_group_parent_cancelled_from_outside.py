# The Python twin of `task_group_parent_cancelled_from_outside` in tests/runtime_timeout_taskgroup.rs.

from prelude import *

async def quiet(name, d, cleanup):
    try:
        await asyncio.sleep(d)
    except asyncio.CancelledError:
        await asyncio.sleep(cleanup)
        log(f"{name} cleanup done")
        raise
    log(f"{name} done")

async def runner():
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(quiet("a", 10, 1))
            tg.create_task(quiet("b", 10, 2))
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError as e:
                log(f"body caught {ex(e)}")
                raise
    except asyncio.CancelledError as e:
        log(f"group raised {ex(e)}")
        raise

async def main():
    r = asyncio.create_task(runner())
    await asyncio.sleep(1)
    r.cancel("outside")
    try:
        await r
    except asyncio.CancelledError as e:
        log(f"main caught {ex(e)}, cancelled={r.cancelled()}")
    return 0

go(main)
