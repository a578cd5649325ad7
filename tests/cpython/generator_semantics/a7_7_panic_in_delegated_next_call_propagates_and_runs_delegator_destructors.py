# The Python twin of `a7_7_panic_in_delegated_next_call_propagates_and_runs_delegator_destructors` in tests/generator_semantics.rs.

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
        raise ValueError("hovercraft is full of eels")
        yield "g2 more spam"
    finally:
        trace.append("Finishing g2")
g = g1()
try:
    for x in g:
        trace.append("Yielded %s" % (x,))
except ValueError as e:
    trace.append(f'caught {e}')
trace.append(inspect.getgeneratorstate(g))
print(trace)
