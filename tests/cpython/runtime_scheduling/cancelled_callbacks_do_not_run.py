# The Python twin of `cancelled_callbacks_do_not_run` in tests/runtime_scheduling.rs.

from prelude import *

async def main():
    loop = asyncio.get_running_loop()
    h1 = loop.call_later(5, lambda: log("h1 runs"))
    h2 = loop.call_soon(lambda: log("h2 runs"))
    h3 = loop.call_later(1, lambda: log("h3 runs"))
    loop.call_later(0.5, h3.cancel)
    h1.cancel()
    h2.cancel()
    await asyncio.sleep(2)
    log("main")
    return 0

go(main)
