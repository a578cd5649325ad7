# The Python twin of `a5_6_dropping_a_generator_whose_destructor_yields_does_not_abort` in tests/generator_semantics.rs.

import sys
trace = []
sys.unraisablehook = lambda u: None  # gencoro reports on stderr instead
def g():
    try:
        yield 1
    finally:
        trace.append('finally start')
        yield 2
        trace.append('finally end')
gi = g()
next(gi)
del gi
trace.append('after del')
print(trace)
