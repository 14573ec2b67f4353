#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# The gdb script (gdb/goro.py) against tests/programs/gdb_fibers, attached to the live process
# and then on a core file of it (gdb's generate-core-file): `info goro-fibers` must list the
# program's five fibers with the ids goro::dump gave them, their states, what the parked ones
# wait on and their spawn sites; `goro-fiber N bt` must show the expected frames of each parked
# fiber, and name the thread of the running one. Exits 77 (ctest's SKIP_RETURN_CODE) where gdb
# is missing or may not attach.
#
# With --live-only (the sanitizer builds) there is no core file: ASan's and TSan's shadow
# memory is terabytes of address space, which generate-core-file writes out (filling the disk),
# as it writes any mapping the kernel would dump. The core file is capped at 4 GiB regardless.
# Usage: gdb_script_test.py <gdb_fibers program> <gdb/goro.py> <gdb_fibers.cpp> [--live-only]
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
program, script, source = sys.argv[1:4]
live_only = "--live-only" in sys.argv[4:]

gdb = shutil.which("gdb")
if gdb is None:
    print("gdb_script_test: no gdb on PATH; skipped")
    sys.exit(SKIP)

# The line of each spawn, by its `gdb-site:` mark.
sites = {}
with open(source) as f:
    for number, line in enumerate(f, 1):
        m = re.search(r"gdb-site: (\w+)", line)
        if m:
            sites[m.group(1)] = number
assert len(sites) == 5, sites

# What each fiber's listing and backtrace must show.
expected_state = {
    "chan": r"parked: chan receive 0x[0-9a-f]+, \d+\.\d s",
    "mutex": r"parked: mutex lock 0x[0-9a-f]+, \d+\.\d s",
    "wait_group": r"parked: wait_group wait 0x[0-9a-f]+, \d+\.\d s",
    "sleep": r"parked: sleep, \d+\.\d s",
    "running": r"running on thread \d+ \(LWP \d+\)",
}
expected_frames = {
    "chan": ["switch_context", "gdb_depth_three", "gdb_depth_two", "gdb_depth_one", "fiber_main"],
    "mutex": ["switch_context", "mutex::lock", "fiber_main"],
    "wait_group": ["switch_context", "wait_group::wait", "fiber_main"],
    "sleep": ["switch_context", "sleep_until", "fiber_main"],
    "running": ["nanosleep", "fiber_main"],
}

failures = []


def check(condition, what):
    if not condition:
        failures.append(what)


proc = subprocess.Popen([program], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
dump = []
pid = None
for line in proc.stdout:
    m = re.match(r"ready (\d+)", line)
    if m:
        pid = int(m.group(1))
        break
    dump.append(line)
assert pid == proc.pid, "the program did not say it was ready"
dump = "".join(dump)

# The ids goro::dump gave each site's fiber.
ids = {}
for m in re.finditer(r"^fiber (\d+) \[.*?\n(?:\t[^\n]*\n)*?\tcreated at \S*gdb_fibers\.cpp:(\d+) ",
                     dump, re.M):
    for name, line in sites.items():
        if int(m.group(2)) == line:
            ids[name] = int(m.group(1))
check(sorted(ids) == sorted(sites), "goro::dump names the fiber of every site: %s" % ids)

scratch = tempfile.mkdtemp()
core = os.path.join(scratch, "core")
commands = ["source " + script, "echo ==== info\\n", "info goro-fibers"]
for name, fiber in sorted(ids.items()):
    commands += ["echo ==== bt %s\\n" % name, "goro-fiber %d bt" % fiber]
commands += ["echo ==== end\\n"]


def cap_files():
    limit = 4 << 30
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def run_gdb(target, extra=()):
    argv = [gdb, "-batch", "-nx"] + target
    for c in commands + list(extra):
        argv += ["-ex", c]
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=120, preexec_fn=cap_files).stdout


live = run_gdb(["-p", str(pid)], [] if live_only else ["generate-core-file " + core])
proc.stdin.close()
proc.wait(timeout=30)
if "ptrace: Operation not permitted" in live:
    print(live)
    print("gdb_script_test: gdb may not attach here (ptrace); skipped")
    sys.exit(SKIP)

outputs = [("live", live)]
if live_only:
    print("gdb_script_test: live process only (--live-only: a sanitizer build)")
elif os.path.exists(core):
    outputs.append(("core", run_gdb([program, core])))
else:
    failures.append("gdb wrote no core file")


def section(output, name):
    m = re.search(r"^==== %s\n(.*?)(?=^==== )" % re.escape(name), output, re.S | re.M)
    return m.group(1) if m else ""


for kind, output in outputs:
    listing = section(output, "info")
    listed = set(int(i) for i in re.findall(r"^fiber (\d+) \[", listing, re.M))
    check(listed == set(ids.values()),
          "%s: info goro-fibers lists the fibers goro::dump does (%s, not %s)"
          % (kind, sorted(ids.values()), sorted(listed)))
    for name, fiber in ids.items():
        pattern = r"^fiber %d \[%s\]\n\tcreated at \S*gdb_fibers\.cpp:%d in .*main" % (
            fiber, expected_state[name], sites[name])
        check(re.search(pattern, listing, re.M), "%s: the %s fiber is listed as /%s/"
              % (kind, name, pattern))
        bt = section(output, "bt " + name)
        at = 0
        for frame in expected_frames[name]:
            found = bt.find(frame, at)
            check(found >= 0, "%s: goro-fiber %d bt (%s) shows %s, after the frames before it"
                  % (kind, fiber, name, frame))
            at = max(at, found)
    check("Python Exception" not in output and "Traceback" not in output,
          "%s: the script raised no exception" % kind)

shutil.rmtree(scratch, ignore_errors=True)
if failures:
    for kind, output in outputs:
        print("---- gdb output (%s)\n%s" % (kind, output))
    for f in failures:
        print("FAILED: " + f)
    sys.exit(1)
print("---- gdb output (core)\n" + outputs[-1][1])
print("gdb_script_test: every fiber listed and walked: %s" % ", ".join(kind for kind, _ in outputs))
