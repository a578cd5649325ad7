# The Python twin of `cancel_while_running_then_return_ends_cancelled` in
# tests/runtime_model.rs.

from prelude import *

async def returns_after_cancelling_itself():
    print("self:", asyncio.current_task().cancel())
    return 7

async def cancels_parent(parent):
    await asyncio.sleep(0)
    print("parent:", parent.cancel())
    return 8

async def main():
    t = asyncio.create_task(returns_after_cancelling_itself())
    try:
        print("join:", await t)
    except asyncio.CancelledError:
        print("join: cancelled")
    print("cancelled:", t.cancelled())
    u = asyncio.create_task(cancels_parent(asyncio.current_task()))
    try:
        print("join:", await u)
    except asyncio.CancelledError:
        print("join: cancelled")
    print("cancelled:", u.cancelled())
    return "main done"

print(asyncio.run(main()))
