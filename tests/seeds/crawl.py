import asyncio, sys, time

async def crawl_page(url):
    print('crawling {}'.format(url))
    sleep_time = int(url.split('_')[-1])
    await asyncio.sleep(sleep_time)
    print('OK {}'.format(url))

async def main_sequential(urls):
    for url in urls:
        await crawl_page(url)

async def main_tasks(urls):
    tasks = [asyncio.create_task(crawl_page(url)) for url in urls]
    for task in tasks:
        await task

async def main_gather(urls):
    tasks = [asyncio.create_task(crawl_page(url)) for url in urls]
    await asyncio.gather(*tasks)

mode = sys.argv[1]
main = {'sequential': main_sequential, 'tasks': main_tasks, 'gather': main_gather}[mode]
start = time.time()
asyncio.run(main(['url_1', 'url_2', 'url_3', 'url_4']))
end = time.time()
print('elapsed: {:.3f}s'.format(end - start))
