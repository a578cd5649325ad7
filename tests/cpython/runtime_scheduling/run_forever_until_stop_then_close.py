# The Python twin of `run_forever_until_stop_then_close` in
# tests/runtime_scheduling.rs: seed 004's "cancel every task, loop.stop(),
# loop.run_forever(), loop.close()" shutdown.

from prelude import *

loop = asyncio.new_event_loop()

async def work(n):
    log(f"start {n}")
    try:
        await asyncio.sleep(n)
        log(f"end {n}")
    except asyncio.CancelledError:
        log(f"cancelled {n}")
        raise

async def stopper():
    await asyncio.sleep(2)
    log("stop")
    loop.stop()

tasks = [loop.create_task(work(n)) for n in (1, 3, 5)]
loop.create_task(stopper())
loop.run_forever()
print(f"run_forever returned at {loop.time():.1f}")
for t in tasks:
    t.cancel()
loop.stop()
loop.run_forever()
print(f"after one more iteration: {[t.cancelled() for t in tasks]}")
async def too_long():
    await asyncio.sleep(5)
loop.create_task(stopper())
try:
    loop.run_until_complete(too_long())
except RuntimeError as e:
    print(f"run_until_complete: {e}")
loop.close()
print(f"closed: {loop.is_closed()}")
try:
    loop.close()
    print("closing again does nothing")
except RuntimeError as e:
    print(e)
