# The Python twin of `timer_callback_runs_before_sleeping_task_resumes` in tests/runtime_scheduling.rs.

from prelude import *

async def sleeper():
    log("sleeper sleeps 1")
    await asyncio.sleep(1)
    log("sleeper resumes")

async def main():
    loop = asyncio.get_running_loop()
    t = asyncio.create_task(sleeper())
    await asyncio.sleep(0)  # the sleeper starts and arms its timer first
    loop.call_later(1, lambda: log("call_later callback"))
    await t
    log("main")

go(main)
