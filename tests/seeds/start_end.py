import asyncio, time

start = time.time()

# Ten tasks around a 5 s sleep; the seed prints datetime.now(), which its
# virtual-time twin replaces with the loop's clock.
async def test_asyncio():
    loop = asyncio.get_running_loop()
    print("start : {:.3f}".format(loop.time()))
    await asyncio.sleep(5)
    print('end : {:.3f}'.format(loop.time()))

loop = asyncio.new_event_loop()
task = [loop.create_task(test_asyncio()) for i in range(10)]
loop.run_until_complete(asyncio.wait(task))
loop.close()
print('elapsed: {:.3f}s'.format(time.time() - start))
