# The Python twin of `a5_6_dropping_a_suspended_generator_closes_it_destructors_once` in tests/generator_semantics.rs.

trace = []
def helper():
    try:
        yield 1
    finally:
        trace.append('leave helper')
def g():
    try:
        trace.append('enter')
        yield from helper()
    finally:
        trace.append('finally')
gi = g()
next(gi)
del gi
trace.append('after del')
print(trace)
