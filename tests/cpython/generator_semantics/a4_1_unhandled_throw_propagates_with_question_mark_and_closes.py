# The Python twin of `a4_1_unhandled_throw_propagates_with_question_mark_and_closes` in tests/generator_semantics.rs.

import inspect
trace = []
def g():
    try:
        trace.append('enter')
        try:
            yield 1
        except ValueError as e:
            trace.append(f'handled {e}')
        yield 2
    finally:
        trace.append('finally')
gi = g()
trace.append(f'yielded {next(gi)}')
try:
    gi.throw(KeyError('k'))
except KeyError as e:
    trace.append(f'propagated KeyError {e.args[0]}')
trace.append(inspect.getgeneratorstate(gi))
try:
    next(gi)
except StopIteration:
    trace.append('StopIteration')
print(trace)
