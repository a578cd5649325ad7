import asyncio, time

# Program 1: one task with a done callback.
async def test1():
    print("This is test1")
    await test2()
    print("test1 end")
    return "result done"

async def test2():
    await asyncio.sleep(4)
    print("This is test2")

def callback(future):
    print("callback: ", future.result())

start = time.time()
loop = asyncio.new_event_loop()
task = loop.create_task(test1())
task.add_done_callback(callback)
loop.run_until_complete(task)
loop.close()

# Program 2: ten tasks awaited with wait, results printed in order.
async def test1(x):
    print("I am test1 and the param is {}".format(x))
    await asyncio.sleep(10)
    return x*10

loop = asyncio.new_event_loop()
tasks = [loop.create_task(test1(x)) for x in range(10)]
loop.run_until_complete(asyncio.wait(tasks))
for task in tasks:
    print(task.result())
loop.close()
print('elapsed: {:.3f}s'.format(time.time() - start))
