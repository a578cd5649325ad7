# The Python twin of `a7_8_yield_from_a_finished_subgenerator_yields_nothing` in tests/generator_semantics.rs.

trace = []
def sub():
    yield 1
    return 'r'
def g():
    r = yield from ()
    trace.append(f'yield from empty: {r}')
    s = sub()
    for x in s:
        trace.append(f'sub yielded {x}')
    r = yield from s
    trace.append(f'yield from finished sub: {r}')
try:
    next(g())
except StopIteration:
    trace.append('StopIteration')
print(trace)
