# The Python twin of `timeout_basic` in tests/runtime_timeout_taskgroup.rs.

from prelude import *

async def main():
    me = asyncio.current_task()
    try:
        async with asyncio.timeout(1) as cm:
            log(f"when={cm.when():.1f}")
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError as e:
                log(f"body caught {ex(e)}, expired={cm.expired()}")
                raise
    except TimeoutError as e:
        log(f"timeout raised {ex(e)}, expired={cm.expired()}, cancelling={me.cancelling()}")
    async with asyncio.timeout(2) as cm:
        await asyncio.sleep(0.5)
        v = 7
    log(f"in time: {v}, expired={cm.expired()}")
    await asyncio.sleep(5)  # the deadline of the finished block never fires
    log(f"still fine, cancelling={me.cancelling()}")
    return v

go(main)
