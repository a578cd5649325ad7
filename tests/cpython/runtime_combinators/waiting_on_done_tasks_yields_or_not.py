# The Python twin of `waiting_on_done_tasks_yields_or_not` in tests/runtime_combinators.rs.

from prelude import *

steps = []

async def value(v):
    return v

async def ticker():
    for i in range(100):
        steps.append(i)
        await asyncio.sleep(0)

async def main():
    done = [asyncio.create_task(value(i)) for i in range(9)]
    await asyncio.sleep(0)  # every one of them is done now
    k = asyncio.create_task(ticker())
    await done[0]
    log(f"join: ticks={len(steps)}")
    await asyncio.shield(done[1])
    log(f"shield: ticks={len(steps)}")
    await asyncio.wait_for(done[2], None)
    log(f"wait_for None: ticks={len(steps)}")
    await asyncio.wait_for(done[3], 0)
    log(f"wait_for 0: ticks={len(steps)}")
    await asyncio.wait_for(done[4], 5)
    log(f"wait_for 5: ticks={len(steps)}")
    await asyncio.gather(done[5])
    log(f"gather: ticks={len(steps)}")
    await asyncio.wait([done[6]])
    log(f"wait: ticks={len(steps)}")
    for f in asyncio.as_completed([done[7], done[8]]):
        await f
        log(f"as_completed item: ticks={len(steps)}")
    k.cancel()
    return len(steps)

go(main)
