import asyncio, time

async def hello_world():
    print("Hello, World!")

async def crawl_page(url):
    print('crawling {}'.format(url))
    await asyncio.sleep(int(url.split('_')[-1]))
    print('OK {}'.format(url))

async def main(urls):
    for url in urls:
        await crawl_page(url)

async def notebook_cell():
    # A notebook runs cells inside its own running loop (seeds 001, 002).
    try:
        asyncio.run(main(['url_1', 'url_2', 'url_3', 'url_4']))
    except RuntimeError as e:
        print('RuntimeError: {}'.format(e))
    loop = asyncio.get_event_loop()
    try:
        loop.run_until_complete(hello_world())
    except RuntimeError as e:
        print('RuntimeError: {}'.format(e))

start = time.time()
asyncio.run(notebook_cell())
print('elapsed: {:.3f}s'.format(time.time() - start))
