# The Python twin of `done_callback_on_finished_task_runs_soon` in tests/runtime_scheduling.rs.

from prelude import *

async def quick():
    return 1

async def main():
    t = asyncio.create_task(quick())
    await asyncio.sleep(0)
    t.add_done_callback(lambda f: log("late cb"))
    log("late cb added")
    await asyncio.sleep(0)
    log("main resumed")
    c = asyncio.create_task(quick())
    c.cancel()
    c.add_done_callback(lambda f: log(f"cb on cancelled: cancelled={f.cancelled()}"))
    await asyncio.sleep(0)
    log("main after one yield")
    await asyncio.sleep(0)
    log("main end")

go(main)
