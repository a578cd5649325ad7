# The Python twin of `a4_3_throw_into_closed_hands_the_error_back_and_runs_nothing` in tests/generator_semantics.rs.

trace = []
def g():
    try:
        yield 1
    except ValueError:
        trace.append('body caught')
    finally:
        trace.append('finally')
gi = g()
next(gi)
gi.close()
try:
    gi.throw(ValueError('late'))
except ValueError as e:
    trace.append(f'raised {e}')
print(trace)
