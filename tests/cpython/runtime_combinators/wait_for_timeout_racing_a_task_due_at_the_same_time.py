# The Python twin of `wait_for_timeout_racing_a_task_due_at_the_same_time` in tests/runtime_combinators.rs.

from prelude import *

async def job():
    try:
        await asyncio.sleep(1)
    except asyncio.CancelledError as e:
        log(f"job caught {ex(e)} though its sleep was over")
        raise
    log("job done")
    return 1

async def main():
    t = asyncio.create_task(job())
    try:
        log(f"wait_for -> {await asyncio.wait_for(t, 1)}")
    except TimeoutError as e:
        log(f"wait_for raised {ex(e)}")
    u = asyncio.create_task(job())
    await asyncio.sleep(0)
    log(f"wait_for -> {await asyncio.wait_for(u, 1)}")
    return [t.cancelled(), u.cancelled()]

go(main)
