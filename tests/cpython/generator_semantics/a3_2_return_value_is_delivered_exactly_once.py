# The Python twin of `a3_2_return_value_is_delivered_exactly_once` in tests/generator_semantics.rs.

trace = []
def g():
    yield 1
    return 'done'
gi = g()
trace.append(f'yielded {next(gi)}')
try:
    next(gi)
except StopIteration as e:
    trace.append(f'returned {e.value}')
for i in range(2):
    try:
        next(gi)
    except StopIteration as e:
        trace.append(f'StopIteration {e.value}')
try:
    gi.send(None)
except StopIteration as e:
    trace.append(f'StopIteration {e.value}')
print(trace)
