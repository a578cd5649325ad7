# The Python twin of `a5_5_close_is_not_delivered_as_a_thrown_error` in tests/generator_semantics.rs.

trace = []
def g():
    try:
        yield 1
    except Exception:
        trace.append('except Exception caught it')
    finally:
        trace.append('finally')
gi = g()
next(gi)
trace.append(f'close returned {gi.close()}')
print(trace)
