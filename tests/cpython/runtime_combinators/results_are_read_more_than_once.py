# The Python twin of `results_are_read_more_than_once` in
# tests/runtime_combinators.rs.

from prelude import *

async def main():
    async def val(s):
        return s
    abc = asyncio.create_task(val("abc"))
    d = asyncio.create_task(val("def"))
    log(f"gather: {await asyncio.gather(abc, abc, d, abc)}")
    log(f"result twice: {abc.result()} {abc.result()}")
    log(f"await again: {await abc}")
    return 0

go(main)
