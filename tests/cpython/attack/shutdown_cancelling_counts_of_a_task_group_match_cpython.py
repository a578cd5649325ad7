# A task group pending at shutdown, and a task joining the group's owner.
import asyncio

T = {}

async def sl():
    await asyncio.sleep(1000)

async def grouper():
    async with asyncio.TaskGroup() as tg:
        T['a'] = tg.create_task(sl())
        T['b'] = tg.create_task(sl())

async def join(t):
    await t

async def main():
    T['g'] = asyncio.create_task(grouper())
    T['jg'] = asyncio.create_task(join(T['g']))
    await asyncio.sleep(0)
    await asyncio.sleep(0)

asyncio.run(main())
# a's and b's counts depend on the order of asyncio.all_tasks() (a set of
# tasks hashed by address): 2 when the shutdown cancels the child directly
# before the group's abort reaches it, else 1. (gencoro's order is fixed and
# gives 2 for both.)
for name in sorted(T):
    n = T[name].cancelling()
    print(name, "1-2" if name in ("a", "b") and n in (1, 2) else n, T[name].cancelled())
