# The Python twin of `a2_4_next_resumes_a_generator_that_accepts_thrown_errors` in tests/generator_semantics.rs.

trace = []
def g():
    try:
        got = yield 1
        trace.append(f"got {got}")
        yield 2
    except ValueError as e:
        trace.append(f"caught {e}")
        yield 3
gi = g()
trace.append(f"yielded {next(gi)}")
trace.append(f"yielded {next(gi)}")
trace.append(f"yielded {gi.throw(ValueError('v'))}")
print(trace)
