# The Python twin of `a6_2_delegator_and_subgenerator_both_count_as_running` in tests/generator_semantics.rs.

import inspect
trace = []
def one():
    yield 0
    yield from two()
    yield 3
def two():
    yield 1
    trace.append(f'two sees g1 {inspect.getgeneratorstate(g1)}')
    try:
        next(g1)
    except ValueError as e:
        trace.append(f'next(g1): {e}')
    try:
        yield from g1
    except ValueError as e:
        trace.append(f'yield from g1: {e}')
    yield 2
g1 = one()
for v in g1:
    trace.append(f'yielded {v}')
trace.append('stop')
trace.append('send:')
g1 = one()
trace.append(f'yielded {next(g1)}')
try:
    while True:
        trace.append(f'yielded {g1.send(42)}')
except StopIteration:
    trace.append('stop')
print(trace)
