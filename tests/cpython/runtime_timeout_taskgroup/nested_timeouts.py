# The Python twin of `nested_timeouts` in tests/runtime_timeout_taskgroup.rs.

from prelude import *

async def main():
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    # the outer deadline fires: the inner block passes the cancellation on
    try:
        async with asyncio.timeout(1) as outer:
            try:
                async with asyncio.timeout(5) as inner:
                    await asyncio.sleep(10)
            except asyncio.CancelledError as e:
                log(f"inner block passed {ex(e)} on, inner expired={inner.expired()}")
                raise
    except TimeoutError:
        log(f"outer raised TimeoutError, outer expired={outer.expired()}")
    # the inner deadline fires: the outer block goes on
    async with asyncio.timeout(5) as outer:
        try:
            async with asyncio.timeout(1) as inner:
                await asyncio.sleep(10)
        except TimeoutError:
            log(f"inner raised TimeoutError, inner expired={inner.expired()}")
        await asyncio.sleep(1)
        log(f"outer body goes on, outer expired={outer.expired()}")
    # the same deadline: only the outermost converts
    deadline = loop.time() + 1
    try:
        async with asyncio.timeout_at(deadline) as cm1:
            try:
                async with asyncio.timeout_at(deadline) as cm2:
                    await asyncio.sleep(10)
            except asyncio.CancelledError as e:
                log(f"inner passed {ex(e)} on")
                raise
    except TimeoutError:
        log(f"outermost raised TimeoutError, expired: {cm1.expired()} {cm2.expired()}")
    return me.cancelling()

go(main)
