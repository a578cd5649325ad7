# The Python twin of `ready_queue_snapshot_rule` in tests/runtime_scheduling.rs.

from prelude import *

async def main():
    loop = asyncio.get_running_loop()
    def chain(i):
        log(f"A{i}")
        if i == 1:
            loop.call_later(0, lambda: log("T"))
        if i < 4:
            loop.call_soon(chain, i + 1)
    loop.call_soon(chain, 1)
    await asyncio.sleep(1)
    log("main")

go(main)
