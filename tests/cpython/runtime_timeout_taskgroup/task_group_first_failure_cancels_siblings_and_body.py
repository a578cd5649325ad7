# The Python twin of `task_group_first_failure_cancels_siblings_and_body` in tests/runtime_timeout_taskgroup.rs.

from prelude import *

async def job(name, d, fail=False, cleanup=0):
    try:
        await asyncio.sleep(d)
    except asyncio.CancelledError:
        log(f"{name} cancelled")
        await asyncio.sleep(cleanup)
        log(f"{name} cleanup done")
        raise
    if fail:
        log(f"{name} fails")
        raise Boom(name)
    log(f"{name} done")
    return name

async def main():
    me = asyncio.current_task()
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(job("a", 1, fail=True))
            b = tg.create_task(job("b", 10, cleanup=1))
            x = tg.create_task(job("x", 0.5))
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError as e:
                log(f"body caught {ex(e)}")
                try:
                    tg.create_task(job("late", 1))
                except RuntimeError as e:
                    log(f"spawn refused: {'is shutting down' in str(e)}")
                raise
    except BaseExceptionGroup as e:
        log(f"group raised {ex(e)}")
    log(f"b cancelled={b.cancelled()}, x -> {x.result()}, cancelling={me.cancelling()}")
    return me.cancelling()

go(main)
