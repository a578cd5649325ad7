# The Python twin of `a7_3_a7_7_handling_panic_while_delegating_send` in tests/generator_semantics.rs.

import inspect
trace = []
def g1():
    trace.append("Starting g1")
    x = yield "g1 ham"
    trace.append("g1 received %s" % (x,))
    yield from g2()
    x = yield "g1 eggs"
    trace.append("g1 received %s" % (x,))
    trace.append("Finishing g1")
def g2():
    trace.append("Starting g2")
    x = yield "g2 spam"
    trace.append("g2 received %s" % (x,))
    raise ValueError("hovercraft is full of eels")
g = g1()
y = next(g)
x = 1
try:
    while 1:
        y = g.send(x)
        trace.append("Yielded %s" % (y,))
        x += 1
except ValueError as e:
    trace.append(f'caught {e}')
trace.append(inspect.getgeneratorstate(g))
print(trace)
