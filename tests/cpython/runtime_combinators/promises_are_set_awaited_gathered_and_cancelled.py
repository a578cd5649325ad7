# The Python twin of `promises_are_set_awaited_gathered_and_cancelled` in
# tests/runtime_combinators.rs.

from prelude import *

async def main():
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    fut.add_done_callback(lambda f: log(f"first callback sees {f.result()}"))
    def second(f):
        log("second callback")
    fut.add_done_callback(second)
    fut.add_done_callback(lambda f: log("third callback"))
    log(f"removed {fut.remove_done_callback(second)}")
    loop.call_later(1, fut.set_result, 7)
    log(f"awaited {await fut}")
    try:
        fut.set_result(8)
    except asyncio.InvalidStateError:
        log("set twice: InvalidStateError")
    other = loop.create_future()
    async def val():
        return 5
    loop.call_later(1, other.set_result, 6)
    log(f"gather {await asyncio.gather(asyncio.create_task(val()), other)}")
    slow = loop.create_future()
    try:
        await asyncio.wait_for(slow, 1)
    except TimeoutError:
        log(f"wait_for timed out, future cancelled={slow.cancelled()}")
    failing = loop.create_future()
    failing.set_exception(Boom("f"))
    try:
        await failing
    except Boom as e:
        log(f"failed with {ex(e)}")
    return 0

go(main)
