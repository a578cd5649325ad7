# The Python twin of `shield_reports_the_inner_outcome` in tests/runtime_combinators.rs.

from prelude import *

async def job(d, fail=False):
    await asyncio.sleep(d)
    if fail:
        raise Boom("inner failed")
    return d

async def main():
    i = asyncio.create_task(job(1))
    log(f"shield -> {await asyncio.shield(i)}")
    f = asyncio.create_task(job(1, fail=True))
    try:
        await asyncio.shield(f)
    except Boom as e:
        log(f"shield raised {ex(e)}")
    c = asyncio.create_task(job(5))
    asyncio.get_running_loop().call_later(1, c.cancel)
    try:
        await asyncio.shield(c)
    except asyncio.CancelledError as e:
        log(f"shield raised {ex(e)}, inner cancelled={c.cancelled()}")
    me = asyncio.current_task()
    return me.cancelling()

go(main)
