# The Python twin of `timeout_none_zero_past_and_timeout_at` in tests/runtime_timeout_taskgroup.rs.

from prelude import *

async def main():
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(None) as cm:
        await asyncio.sleep(5)
    log(f"no deadline: when={cm.when()} expired={cm.expired()}")
    try:
        async with asyncio.timeout(0):
            await asyncio.sleep(0)
            log("not reached")
    except TimeoutError as e:
        log(f"timeout(0) around sleep(0) raised {ex(e)}")
    try:
        async with asyncio.timeout_at(loop.time() - 1):
            log("body runs until its first wait")
            await asyncio.sleep(0)
            log("not reached")
    except TimeoutError as e:
        log(f"past deadline raised {ex(e)}")
    try:
        async with asyncio.timeout_at(loop.time() + 1.5) as cm:
            await asyncio.sleep(3)
    except TimeoutError as e:
        log(f"timeout_at raised {ex(e)}, when={cm.when():.1f}")
    return 0

go(main)
