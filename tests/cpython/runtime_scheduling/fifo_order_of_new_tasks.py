# The Python twin of `fifo_order_of_new_tasks` in tests/runtime_scheduling.rs.

from prelude import *

async def worker(name):
    log(f"{name} start")
    await asyncio.sleep(0)
    log(f"{name} end")
    return name

async def main():
    tasks = [asyncio.create_task(worker(n), name=n) for n in "abc"]
    log("main created a b c")
    for t in tasks:
        log(f"joined {await t}")
    return len(tasks)

go(main)
