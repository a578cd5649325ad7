# The Python twin of `a6_2_delegator_counts_as_running_while_its_subgenerator_is_closed` in tests/generator_semantics.rs.

import inspect
trace = []
def one():
    yield from two()
def two():
    try:
        yield 1
    finally:
        trace.append(f'two finally sees g1 {inspect.getgeneratorstate(g1)}')
        try:
            next(g1)
        except ValueError as e:
            trace.append(f'next(g1): {e}')
g1 = one()
next(g1)
trace.append(f'close returned {g1.close()}')
print(trace)
