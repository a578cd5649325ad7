# The Python twin of `a6_2_delegators_claim_to_be_running_during_delegated_throw` in tests/generator_semantics.rs.

trace = []
class MyErr(Exception):
    pass
def one():
    try:
        yield 0
    except MyErr:
        trace.append('one caught MyErr')
    yield from two()
    try:
        yield 3
    except MyErr:
        trace.append('one caught MyErr')
def two():
    try:
        yield 1
    except MyErr:
        trace.append('two caught MyErr')
    try:
        yield from g1
    except ValueError as e:
        trace.append(f'two: {e}')
    try:
        yield 2
    except MyErr:
        trace.append('two caught MyErr')
g1 = one()
trace.append(f'yielded {next(g1)}')
try:
    while True:
        trace.append(f'yielded {g1.throw(MyErr)}')
except StopIteration:
    trace.append('stop')
print(trace)
