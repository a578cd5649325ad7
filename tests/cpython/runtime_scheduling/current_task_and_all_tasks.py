# The Python twin of `current_task_and_all_tasks` in tests/runtime_scheduling.rs.

from prelude import *

def names():
    return sorted(t.get_name() for t in asyncio.all_tasks())

async def child(name):
    log(f"{name}: current={asyncio.current_task().get_name()}")
    await asyncio.sleep(1)

async def main():
    loop = asyncio.get_running_loop()
    asyncio.current_task().set_name("main")
    log(f"main: current={asyncio.current_task().get_name()}")
    a = asyncio.create_task(child("a"), name="a")
    b = asyncio.create_task(child("b"), name="b")
    log(f"all: {names()}")
    loop.call_soon(lambda: log(f"callback: current={asyncio.current_task()}"))
    await asyncio.sleep(0)
    await a
    log(f"after a: all: {names()} b done: {b.done()}")
    return len(names())

go(main)
try:
    asyncio.current_task()
except RuntimeError as e:
    print(f"outside: RuntimeError: {e}")
