# The Python twin of `panicking_task_does_not_stop_the_loop` in tests/runtime_scheduling.rs.

from prelude import *

class Panicked(Exception):  # a Rust panic in the task body
    pass

async def bad():
    await asyncio.sleep(1)
    log("bad panics")
    raise Panicked("kaboom 7")

async def good():
    await asyncio.sleep(2)
    log("good finished")
    return 7

async def main():
    loop = asyncio.get_running_loop()
    b = asyncio.create_task(bad(), name="bad")
    g = asyncio.create_task(good(), name="good")
    loop.call_later(0.5, lambda: 1 / 0)  # a failing callback: reported, loop goes on
    try:
        await b
    except Exception as e:
        log(f"join bad: {ex(e)}")
    log(f"good done: {g.done()}")
    log(f"good -> {await g}")
    try:
        b.result()
    except Exception as e:
        log(f"bad again: {ex(e)}")
    return 0

go(main)
