# The Python twin of `wait_for_inner_swallowing_the_cancel_returns_its_value` in tests/runtime_combinators.rs.

from prelude import *

async def stubborn():
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        log("stubborn swallows the cancel")
        await asyncio.sleep(0.5)
    return 42

async def main():
    t = asyncio.create_task(stubborn())
    v = await asyncio.wait_for(t, 1)
    log(f"wait_for -> {v}, cancelled={t.cancelled()}")
    return v

go(main)
