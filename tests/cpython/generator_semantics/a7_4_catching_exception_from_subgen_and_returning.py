# The Python twin of `a7_4_catching_exception_from_subgen_and_returning` in tests/generator_semantics.rs.

trace = []
def inner():
    try:
        yield 1
    except ValueError:
        trace.append("inner caught ValueError")
    return 2
def outer():
    v = yield from inner()
    trace.append("inner returned %r to outer" % (v,))
    yield v
g = outer()
trace.append(str(next(g)))
trace.append(repr(g.throw(ValueError)))
print(trace)
