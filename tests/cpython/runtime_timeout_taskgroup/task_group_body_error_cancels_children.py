# The Python twin of `task_group_body_error_cancels_children` in tests/runtime_timeout_taskgroup.rs.

from prelude import *

class Panicked(Exception):  # a Rust panic in the task body
    pass

async def job(name, d, cleanup):
    try:
        await asyncio.sleep(d)
    except asyncio.CancelledError:
        log(f"{name} cancelled")
        await asyncio.sleep(cleanup)
        log(f"{name} cleanup done")
        raise
    return name

async def panicky():
    await asyncio.sleep(0.5)
    raise Panicked("child panicked")

async def main():
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(job("a", 10, 1))
            await asyncio.sleep(1)
            raise Boom("body")
    except BaseExceptionGroup as e:
        log(f"group raised {ex(e)}")
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(panicky())
            tg.create_task(job("b", 10, 0))
    except BaseExceptionGroup as e:
        log(f"group raised {ex(e)}")
    return asyncio.current_task().cancelling()

go(main)
