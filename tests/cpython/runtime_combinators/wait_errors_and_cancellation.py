# The Python twin of `wait_errors_and_cancellation` in tests/runtime_combinators.rs.

from prelude import *

async def job(name, d):
    await asyncio.sleep(d)
    log(f"{name} done")

async def waiter(tasks):
    try:
        await asyncio.wait(tasks)
    except asyncio.CancelledError as e:
        log(f"wait raised {ex(e)}")
        raise

async def main():
    try:
        await asyncio.wait([])
    except ValueError as e:
        log(f"ValueError: {e}")
    a = asyncio.create_task(job("a", 2), name="a")
    w = asyncio.create_task(waiter([a]))
    await asyncio.sleep(1)
    w.cancel()
    try:
        await w
    except asyncio.CancelledError as e:
        log(f"main caught {ex(e)}, a cancelled={a.cancelled()}")
    await a
    return a.done()

go(main)
