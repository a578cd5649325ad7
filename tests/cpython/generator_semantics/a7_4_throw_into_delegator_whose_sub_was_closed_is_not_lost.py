# The Python twin of `a7_4_throw_into_delegator_whose_sub_was_closed_is_not_lost` in tests/generator_semantics.rs.

def sub():
    yield 1
    yield 2
def outer(s, log):
    try:
        yield from s
    except ValueError:
        log.append('caught ValueError at yield from')
s = sub(); log = []
o = outer(s, log); next(o)
s.close()                  # someone else closes the sub mid-delegation
try: o.throw(ValueError)
except StopIteration: pass
print(*log, sep="\n")
