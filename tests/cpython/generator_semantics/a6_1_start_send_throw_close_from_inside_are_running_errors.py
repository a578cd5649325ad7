# The Python twin of `a6_1_start_send_throw_close_from_inside_are_running_errors` in tests/generator_semantics.rs.

import inspect
trace = []
def g():
    for name, op in [('next', lambda: next(me)), ('send', lambda: me.send(1)),
                     ('throw', lambda: me.throw(KeyError('k'))),
                     ('close', lambda: me.close())]:
        try:
            op()
            trace.append(f'{name}: no error')
        except ValueError as e:
            trace.append(f'{name}: {e}')
    yield 1
    trace.append('resumed')
me = g()
next(me)
trace.append(inspect.getgeneratorstate(me))
try:
    next(me)
except StopIteration:
    pass
trace.append(inspect.getgeneratorstate(me))
print(trace)
