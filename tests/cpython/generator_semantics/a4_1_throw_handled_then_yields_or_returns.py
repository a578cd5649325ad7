# The Python twin of `a4_1_throw_handled_then_yields_or_returns` in tests/generator_semantics.rs.

import inspect
trace = []
def g():
    try:
        trace.append('enter')
        try:
            yield 1
        except ValueError as e:
            trace.append(f'handled {e}')
        try:
            yield 2
        except ValueError as e:
            trace.append(f'handled {e}, returning')
            return 'ret'
        yield 3
    finally:
        trace.append('finally')
gi = g()
trace.append(f'yielded {next(gi)}')
trace.append(f'yielded {gi.throw(ValueError("a"))}')
try:
    gi.throw(ValueError('b'))
except StopIteration as e:
    trace.append(f'returned {e.value}')
trace.append(inspect.getgeneratorstate(gi))
print(trace)
