# The Python twin of `zero_delay_timers_run_behind_ready_work` in
# tests/runtime_model.rs.

from prelude import *

async def worker():
    print("worker step 1")
    await asyncio.sleep(0)
    print("worker step 2")

async def main():
    loop = asyncio.get_running_loop()
    loop.call_later(0, print, "timer 0 (armed first)")
    loop.call_soon(print, "call_soon")
    asyncio.create_task(worker())
    await asyncio.sleep(0)
    print("main after sleep(0)")
    loop.call_later(0, print, "timer 0 (armed second)")
    await asyncio.sleep(0)
    print("main after 2nd sleep(0)")
    await asyncio.sleep(0)
    print("main after 3rd sleep(0)")

asyncio.run(main())
