# The Python twin of `a3_1_return_value_comes_from_next_send_or_throw` in tests/generator_semantics.rs.

trace = []
def g(r):
    trace.append('g starting')
    try:
        x = yield
        if x is not None:
            trace.append(f'g received {x}')
    except ValueError as e:
        trace.append(f'g caught {e}')
    trace.append(f'g returning {r}')
    return r
def f(r, how):
    gi = g(r)
    next(gi)
    try:
        if how == 'next':
            trace.append('f resuming g')
            next(gi)
        elif how == 'send':
            trace.append('f sending spam to g')
            gi.send('spam')
        else:
            trace.append('f throwing into g')
            gi.throw(ValueError('boom'))
        trace.append('f SHOULD NOT BE HERE')
    except StopIteration as e:
        trace.append(f'f caught StopIteration {e.value}')
f(None, 'next')
f(1, 'next')
f(2, 'send')
f(3, 'throw')
print(trace)
