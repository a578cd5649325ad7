# The Python twin of `a7_5_panic_while_delegating_close_propagates_through_the_delegator` in tests/generator_semantics.rs.

import inspect
trace = []
def g1():
    try:
        trace.append("Starting g1")
        yield "g1 ham"
        yield from g2()
        yield "g1 eggs"
    finally:
        trace.append("Finishing g1")
def g2():
    try:
        trace.append("Starting g2")
        yield "g2 spam"
        yield "g2 more spam"
    finally:
        trace.append("Finishing g2")
        raise ValueError("nybbles have exploded with delight")
g = g1()
for i in range(2):
    x = next(g)
    trace.append("Yielded %s" % (x,))
try:
    g.close()
except ValueError as e:
    trace.append(f'close raised {e}')
trace.append(inspect.getgeneratorstate(g))
print(trace)
