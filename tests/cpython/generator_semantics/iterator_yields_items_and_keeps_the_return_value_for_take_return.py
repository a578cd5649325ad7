# The Python twin of `iterator_yields_items_and_keeps_the_return_value_for_take_return` in tests/generator_semantics.rs.

trace = []
def countdown():
    for i in range(3, 0, -1):
        yield i
    return 'liftoff'
it = countdown()
while True:
    try:
        trace.append(str(next(it)))
    except StopIteration as e:
        trace.append(f'return value {e.value}')
        break
trace.append('exhausted' if next(it, None) is None else 'more')
print(trace)
