# The Python twin of `timeouts_are_raised_from_the_cancellation` in
# tests/runtime_timeout_taskgroup.rs.

from prelude import *

async def main():
    try:
        await asyncio.wait_for(asyncio.sleep(10), 1)
    except TimeoutError as e:
        log(f"wait_for raised {ex(e)} from {ex(e.__cause__)}")
    try:
        async with asyncio.timeout(1):
            await asyncio.sleep(10)
    except TimeoutError as e:
        log(f"timeout raised {ex(e)} from {ex(e.__cause__)}")
    return 0

go(main)
