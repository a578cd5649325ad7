# The Python twin of `a7_4_delegating_throw_unhandled_propagates_innermost_first` in tests/generator_semantics.rs.

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
g = g1()
try:
    for i in range(2):
        x = next(g)
        trace.append("Yielded %s" % (x,))
    e = ValueError("tomato ejected")
    g.throw(e)
except ValueError as e:
    trace.append(f'caught {e}')
trace.append(inspect.getgeneratorstate(g))
print(trace)
