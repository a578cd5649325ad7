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
# b's count depends on the order of asyncio.all_tasks() (a set): 2 when the
# shutdown cancels it directly before the group's abort reaches it, else 1.
for name in sorted(T):
    n = T[name].cancelling()
    print(name, "1-2" if name == "b" and n in (1, 2) else n, T[name].cancelled())
