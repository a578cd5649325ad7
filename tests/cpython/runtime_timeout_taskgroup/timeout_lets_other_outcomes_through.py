# The Python twin of `timeout_lets_other_outcomes_through` in tests/runtime_timeout_taskgroup.rs.

from prelude import *

async def main():
    me = asyncio.current_task()
    # the body swallows the cancellation and finishes: no TimeoutError
    async with asyncio.timeout(1) as cm:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            log("body swallows the cancellation")
        v = "finished anyway"
    log(f"{v}, expired={cm.expired()}, cancelling={me.cancelling()}")
    # another exception after the deadline passes through
    try:
        async with asyncio.timeout(1) as cm:
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                raise Boom("instead")
    except Boom as e:
        log(f"raised {ex(e)}, expired={cm.expired()}, cancelling={me.cancelling()}")
    # an exception before the deadline passes through
    try:
        async with asyncio.timeout(1) as cm:
            await asyncio.sleep(0.5)
            raise Boom("early")
    except Boom as e:
        log(f"raised {ex(e)}, expired={cm.expired()}")
    await asyncio.sleep(2)
    return me.cancelling()

go(main)
