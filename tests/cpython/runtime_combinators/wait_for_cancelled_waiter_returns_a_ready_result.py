# The Python twin of `wait_for_cancelled_waiter_returns_a_ready_result` in tests/runtime_combinators.rs.

from prelude import *

async def job():
    await asyncio.sleep(1)
    log("job returns 5")
    return 5

async def waiter(t):
    v = await asyncio.wait_for(t, 5)
    log(f"wait_for -> {v} despite the cancel")
    return v

async def main():
    loop = asyncio.get_running_loop()
    t = asyncio.create_task(job())
    w = asyncio.create_task(waiter(t))
    await asyncio.sleep(0)
    # due with the job's sleep, armed after it: the waiter is cancelled in
    # the iteration before the job returns
    loop.call_later(1, lambda: log(f"cancel waiter -> {w.cancel()}"))
    v = await w
    log(f"waiter -> {v}, cancelled={w.cancelled()} cancelling={w.cancelling()}")
    return v

go(main)
