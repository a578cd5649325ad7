# The Python twin of `done_callbacks_in_registration_order` in tests/runtime_scheduling.rs.

from prelude import *

async def work():
    await asyncio.sleep(1)
    log("work returns")
    return 3

async def waiter(t):
    log("waiter waits")
    v = await t
    log(f"waiter got {v}")

async def main():
    t = asyncio.create_task(work(), name="t")
    t.add_done_callback(lambda f: log(f"cb1 done={f.done()}"))
    w = asyncio.create_task(waiter(t))
    await asyncio.sleep(0)  # the waiter registers its wake-up between cb1 and cb2
    t.add_done_callback(lambda f: log(f"cb2 cancelled={f.cancelled()}"))
    log("callbacks added")
    await w
    log("main after waiter")

go(main)
