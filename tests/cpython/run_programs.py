"""Runs Python programs, each in a process of its own, for tests/cpython_programs.rs.

    python3 run_programs.py <out-dir> <program.py>...

Starting CPython and importing asyncio takes longer than most of these
programs run, so this imports asyncio and the prelude once and then forks one
child per program. The child runs the program as `__main__`, as
`python3 <program.py>` would, with its stdout and stderr going to
`<out-dir>/<n>.out` and `<out-dir>/<n>.err`, and exits through the
interpreter's normal shutdown. For each program this prints one line,
`<n> <exit status>`, once the child has ended.
"""

import os
import runpy
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import asyncio  # noqa: E402,F401  (imported before the forks, once)
import prelude  # noqa: E402,F401

out_dir, programs = sys.argv[1], sys.argv[2:]
for n, program in enumerate(programs):
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        for fd, suffix in ((1, "out"), (2, "err")):
            path = os.path.join(out_dir, f"{n}.{suffix}")
            file = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(file, fd)
            os.close(file)
        sys.argv = [program]
        sys.path[0] = os.path.dirname(os.path.abspath(program))
        sys.path.insert(1, HERE)
        runpy.run_path(program, run_name="__main__")
        sys.exit(0)
    _, status = os.waitpid(pid, 0)
    print(n, os.waitstatus_to_exitcode(status), flush=True)
