# The Python twin of `a7_11_yield_from_a_plain_iterable` in tests/generator_semantics.rs.

trace = []
def g():
    r = yield from range(3)
    trace.append(f'range gave {r}')
    yield from ()
    trace.append('empty tuple gave nothing')
    try:
        yield from iter([7, 8])
    except AttributeError:
        trace.append('send to a plain iterator: AttributeError')
    yield 9
gi = g()
for _ in range(3):
    trace.append(f'yielded {next(gi)}')
trace.append(f'yielded {next(gi)}')
trace.append(f'yielded {gi.send(5)}')
print(trace)
