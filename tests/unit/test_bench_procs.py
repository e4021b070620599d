"""bench/procs.py: the process tree and CPU the benches read from /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from bench.procs import compiling_s, cpu_s, family, machine_ticks


def test_a_process_family_holds_its_children_and_their_cpu_counts() -> None:
    burn = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass"
    child = subprocess.Popen([sys.executable, "-c", burn + "\ntime.sleep(30)"])
    try:
        deadline = time.monotonic() + 20
        # past 0.2 s (it burns 0.3): at exactly 0.2, `own + 0.2` rounds above the family's sum
        while child.pid not in family(os.getpid()) or cpu_s([child.pid]) < 0.25:
            assert time.monotonic() < deadline, "the child never showed its CPU"
            time.sleep(0.05)
        # our own CPU read first: it only grows, so the family read after holds at least it
        own = cpu_s([os.getpid()])
        assert cpu_s(family(os.getpid())) >= own + 0.2
    finally:
        child.kill()
        child.wait()
    assert cpu_s([child.pid]) == 0  # gone: counted as nothing, not an error
    assert family(None) == []


def test_the_machine_is_busy_while_this_process_burns_cpu() -> None:
    busy, total = machine_ticks()
    end = time.process_time() + 0.3
    while time.process_time() < end:
        pass
    busy_after, total_after = machine_ticks()
    assert 0 < busy_after - busy <= total_after - total


# a process whose one thread is named as a JVM names its JIT compiler, and burns 0.3 s in it
_COMPILER = """
import ctypes, threading, time
def compile_():
    ctypes.CDLL(None).prctl(15, b"C2 CompilerThread0", 0, 0, 0)  # PR_SET_NAME
    end = time.thread_time() + 0.3
    while time.thread_time() < end: pass
    time.sleep(30)
threading.Thread(target=compile_, daemon=True).start()
end = time.process_time() + 0.3
while time.process_time() < end + 0.3: pass
time.sleep(30)
"""


def test_a_jvms_compiling_is_its_compiler_threads_cpu_alone() -> None:
    jvm = subprocess.Popen([sys.executable, "-c", _COMPILER])
    try:
        deadline = time.monotonic() + 20
        while compiling_s([jvm.pid]) < 0.28 or cpu_s([jvm.pid]) < 0.6:
            assert time.monotonic() < deadline, "the compiler thread's CPU never showed"
            time.sleep(0.05)
        compiling = compiling_s([jvm.pid])
        assert compiling <= cpu_s([jvm.pid]) - 0.2  # the other thread's is not in it
        assert compiling < 0.4
    finally:
        jvm.kill()
        jvm.wait()
    assert compiling_s([os.getpid()]) == 0  # Python compiles nothing on threads of its own
    assert compiling_s([jvm.pid]) == 0
