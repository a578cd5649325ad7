# The Python twin of `condition_wait_and_notify_need_the_lock` in
# tests/sync_locks.rs (CPython's test_locks.py test_wait_unacquired,
# test_notify_unacquired, test_notify_all_unacquired). The Rust test holds a
# guard whose lock was released by hand, the one way to wait unacquired.

from prelude import *

async def main():
    cond = asyncio.Condition()
    try:
        await cond.wait()
    except RuntimeError as e:
        log(f"wait: RuntimeError: {e}")
    try:
        cond.notify(1)
    except RuntimeError as e:
        log(f"notify: RuntimeError: {e}")
    try:
        cond.notify_all()
    except RuntimeError as e:
        log(f"notify_all: RuntimeError: {e}")
    log(f"locked {cond.locked()}")

go(main)
