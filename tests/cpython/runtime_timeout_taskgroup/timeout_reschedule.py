# The Python twin of `timeout_reschedule` in tests/runtime_timeout_taskgroup.rs.

from prelude import *

async def main():
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(None) as cm:
            cm.reschedule(loop.time() + 1)
            log(f"when={cm.when():.1f}")
            await asyncio.sleep(0.5)
            cm.reschedule(loop.time() + 2)
            log(f"when={cm.when():.1f}")
            await asyncio.sleep(10)
    except TimeoutError:
        log(f"rescheduled deadline fired, expired={cm.expired()}")
    try:
        cm.reschedule(None)
    except RuntimeError as e:
        log(f"RuntimeError: {e}")
    async with asyncio.timeout(1) as cm:
        cm.reschedule(None)
        await asyncio.sleep(2)
    log(f"disabled: expired={cm.expired()} when={cm.when()}")
    try:
        cm.reschedule(loop.time() + 5)
    except RuntimeError as e:
        log(f"RuntimeError: {e}")
    try:
        async with asyncio.timeout(1) as cm:
            try:
                await asyncio.sleep(2)
            except asyncio.CancelledError:
                try:
                    cm.reschedule(loop.time() + 10)
                except RuntimeError as e:
                    log(f"RuntimeError: {e}")
                raise
    except TimeoutError:
        log("timed out")
    try:
        async with asyncio.timeout(10) as cm:
            await asyncio.sleep(1)
            cm.reschedule(loop.time() - 0.5)
            log("rescheduled into the past")
            await asyncio.sleep(0)
            log("not reached")
    except TimeoutError:
        log(f"past reschedule raised TimeoutError")
    return 0

go(main)
