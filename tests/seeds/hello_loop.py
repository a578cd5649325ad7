import asyncio, time

start = time.time()

# Example 1: an event loop got, run until a coroutine completes, and closed,
# outside any running loop.
async def hello_world():
    print("Hello, World!")

loop = asyncio.new_event_loop()
loop.run_until_complete(hello_world())
loop.close()

# The serial crawler: plain functions, blocking time.sleep.
def crawl_page(url):
    print('crawling {}'.format(url))
    sleep_time = int(url.split('_')[-1])
    time.sleep(sleep_time)
    print('OK {}'.format(url))

def main(urls):
    for url in urls:
        crawl_page(url)

main(['url_1', 'url_2', 'url_3', 'url_4'])
print('elapsed: {:.3f}s'.format(time.time() - start))
