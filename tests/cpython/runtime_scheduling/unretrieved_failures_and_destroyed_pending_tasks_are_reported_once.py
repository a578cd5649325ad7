# The Python twin of
# `unretrieved_failures_and_destroyed_pending_tasks_are_reported_once` in
# tests/runtime_scheduling.rs.

from prelude import *

def handler(loop, context):
    task = context.get("task") or context.get("future")
    print(f"report: {context['message']} ({task.get_name()})")

async def fails():
    raise Boom("x")

async def main():
    asyncio.get_running_loop().set_exception_handler(handler)
    unread = asyncio.create_task(fails(), name="unread")
    read = asyncio.create_task(fails(), name="read")
    gathered = asyncio.create_task(fails(), name="gathered")
    await asyncio.sleep(0)
    try:
        read.result()
    except Boom:
        log("read's failure was read")
    await asyncio.gather(gathered, return_exceptions=True)
    del unread
    log("unread dropped")
    del read, gathered
    log("read ones dropped")
    return 0

go(main)

loop = asyncio.new_event_loop()
loop.set_exception_handler(handler)
async def sleeper():
    await asyncio.sleep(10)
pending = loop.create_task(sleeper(), name="pending")
loop.run_until_complete(asyncio.sleep(0))
loop.close()
# gencoro drops the pending task at close; CPython when it is collected.
del pending
import gc
gc.collect()
print("closed")
