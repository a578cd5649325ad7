# The Python twin of `task_group_tasks_spawn_into_their_own_group` in
# tests/runtime_timeout_taskgroup.rs.

from prelude import *

async def main():
    async def child(tg, n):
        log(f"child {n}")
        if n < 2:
            tg.create_task(child(tg, n + 1))
        await asyncio.sleep(1)
        log(f"child {n} done")
    async with asyncio.TaskGroup() as tg:
        tg.create_task(child(tg, 0))
    log("group done")
    late = child(tg, 9)
    try:
        tg.create_task(late)
    except RuntimeError as e:
        late.close()
        log(f"late spawn refused: {str(e).endswith('is finished')}")
    return 0

go(main)
