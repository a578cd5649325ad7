# The Python twin of `wait_for_reports_the_task_failure` in tests/runtime_combinators.rs.

from prelude import *

async def failing():
    await asyncio.sleep(1)
    raise Boom("inner")

async def main():
    t = asyncio.create_task(failing())
    try:
        await asyncio.wait_for(t, 5)
    except Boom as e:
        log(f"wait_for raised {ex(e)}")
    return 0

go(main)
