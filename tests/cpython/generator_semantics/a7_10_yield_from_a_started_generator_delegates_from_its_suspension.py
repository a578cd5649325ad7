# The Python twin of `a7_10_yield_from_a_started_generator_delegates_from_its_suspension` in tests/generator_semantics.rs.

trace = []
def inner():
    trace.append('inner start')
    x = yield 1
    trace.append(f'inner got {x}')
    yield 2
    return 'done'
def outer(g):
    r = yield from g
    trace.append(f'outer got {r}')
g = inner()
trace.append(f'first {next(g)}')
o = outer(g)
trace.append(f'yielded {next(o)}')
try:
    next(o)
except StopIteration:
    trace.append('outer finished')
print(trace)
