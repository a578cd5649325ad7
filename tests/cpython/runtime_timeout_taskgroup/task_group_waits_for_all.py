# The Python twin of `task_group_waits_for_all` in tests/runtime_timeout_taskgroup.rs.

from prelude import *

async def job(name, d):
    await asyncio.sleep(d)
    log(f"{name} done")
    return name

async def main():
    async with asyncio.TaskGroup() as tg:
        a = tg.create_task(job("a", 3))
        b = tg.create_task(job("b", 1))
        log("body ends")
    log(f"group exited: {a.result()} {b.result()}")
    async with asyncio.TaskGroup() as tg:
        tg.create_task(job("c", 1))
        await asyncio.sleep(2)
        tg.create_task(job("d", 1))
        log("body ends")
    log("second group exited")
    return asyncio.current_task().cancelling()

go(main)
