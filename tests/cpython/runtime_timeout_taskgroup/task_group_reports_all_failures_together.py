# The Python twin of `task_group_reports_all_failures_together` in tests/runtime_timeout_taskgroup.rs.

from prelude import *

async def fail(name, d):
    await asyncio.sleep(d)
    log(f"{name} fails")
    raise Boom(name)

async def bad_cleanup():
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        log("b cancelled")
        await asyncio.sleep(1)
        log("b cleanup fails")
        raise Boom("b cleanup")

async def main():
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(fail("a", 1))
            tg.create_task(bad_cleanup())
            tg.create_task(fail("c", 1))
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                log("body cancelled, raises")
                raise Boom("body")
    except BaseExceptionGroup as e:
        log(f"group raised {ex(e)}")
    return asyncio.current_task().cancelling()

go(main)
