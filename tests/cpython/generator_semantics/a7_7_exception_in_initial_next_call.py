# The Python twin of `a7_7_exception_in_initial_next_call` in tests/generator_semantics.rs.

trace = []
def g1():
    trace.append("g1 about to yield from g2")
    yield from g2()
    trace.append("g1 should not be here")
def g2():
    yield 1/0
try:
    gi = g1()
    next(gi)
except ZeroDivisionError:
    trace.append('caught ZeroDivisionError')
print(trace)
