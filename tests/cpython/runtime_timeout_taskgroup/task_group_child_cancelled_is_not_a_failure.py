# The Python twin of `task_group_child_cancelled_is_not_a_failure` in tests/runtime_timeout_taskgroup.rs.

from prelude import *

async def job(name, d):
    try:
        await asyncio.sleep(d)
    except asyncio.CancelledError:
        log(f"{name} cancelled")
        raise
    log(f"{name} done")
    return name

async def main():
    async with asyncio.TaskGroup() as tg:
        a = tg.create_task(job("a", 10))
        b = tg.create_task(job("b", 2))
        await asyncio.sleep(1)
        a.cancel()
        log("body cancelled a")
    log(f"group exited normally, a cancelled={a.cancelled()}, b -> {b.result()}")
    return 0

go(main)
