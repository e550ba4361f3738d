#!/usr/bin/python3
"""Every loop marked `#pragma omp simd` in kernels/ and pipeline/ must be
vectorised by the compiler.

The pixel kernels are written branch-free (selects, no calls that are not
inlined) so that GCC vectorises them; a change that breaks this (a branch,
a function pointer, a store the compiler cannot prove independent) slows
them down without failing any other test. This compiles each source that
has such a loop with the build's own command (from compile_commands.json),
at -O2 (the test build's level; Release's -O3 vectorises at least as much)
without sanitizers, and with -fopt-info-vec-optimized, and checks that the
compiler reports "loop vectorized" inside every marked loop.

    check_vectorised.py BUILD_DIR SOURCE_DIR

Exit 0 when all are vectorised, 1 otherwise (listing file:line of each
loop that is not)."""
import json
import os
import re
import shlex
import subprocess
import sys

PRAGMA = re.compile(r"\s*#\s*pragma\s+omp\s+(?:(?:parallel\s+)?for\s+)?simd\b")
FOR = re.compile(r"\s*for\s*\(")


def strip_comments(line):
    return re.sub(r"//.*|/\*.*?\*/", "", line)


def loop_span(lines, j):
    """First and last line (1-based) of the for statement at index j: to
    its matching brace, or to the end of its one-statement body."""
    depth, opened = 0, False
    for k in range(j, len(lines)):
        s = strip_comments(lines[k])
        for ch in s:
            if ch == "{":
                depth += 1
                opened = True
            elif ch == "}":
                depth -= 1
        if opened and depth == 0:
            return j + 1, k + 1
        if not opened and k > j and s.rstrip().endswith(";"):
            return j + 1, k + 1
    return j + 1, j + 1


def marked_loops(path):
    with open(path) as f:
        lines = f.read().split("\n")
    spans = []
    for i, line in enumerate(lines):
        if PRAGMA.match(line):
            j = i + 1
            while j < len(lines) and not FOR.match(lines[j]):
                j += 1
            if j < len(lines):
                spans.append(loop_span(lines, j))
    return spans


def main():
    build, src = sys.argv[1], sys.argv[2]
    with open(os.path.join(build, "compile_commands.json")) as f:
        commands = {os.path.realpath(c["file"]): c for c in json.load(f)}
    checked, missing = 0, []
    for folder in ("kernels", "pipeline"):
        d = os.path.join(src, folder)
        for name in sorted(os.listdir(d)):
            if not name.endswith(".c"):
                continue
            path = os.path.realpath(os.path.join(d, name))
            spans = marked_loops(path)
            if not spans:
                continue
            c = commands.get(path)
            if c is None:
                missing.append(f"{folder}/{name}: not in compile_commands.json")
                continue
            argv = shlex.split(c["command"])
            # Drop the output, sanitizers, -Werror (the check is about
            # vectorising only) and debug info (-g moves some loops'
            # reported line to the statement before them); no LTO, which
            # vectorises at link time only.
            out, skip = [], False
            for a in argv:
                if skip:
                    skip = False
                    continue
                if a == "-o":
                    skip = True
                    continue
                if a.startswith(("-fsanitize", "-g", "-flto")) or \
                        a == "-Werror":
                    continue
                out.append(a)
            out += ["-O2", "-fno-lto", "-o", os.devnull,
                    "-fopt-info-vec-optimized"]
            r = subprocess.run(out, cwd=c["directory"], capture_output=True,
                               text=True)
            if r.returncode != 0:
                missing.append(f"{folder}/{name}: compile failed: "
                               + r.stderr.strip()[-500:])
                continue
            # GCC names the file as the command did (maybe through a
            # symlink): compare resolved paths.
            done = set()
            for m in re.finditer(r"^(.*?):(\d+):\d+: optimized: loop "
                                 r"vectorized", r.stderr, re.M):
                f = os.path.join(c["directory"], m.group(1))
                if os.path.realpath(f) == path:
                    done.add(int(m.group(2)))
            for a, b in spans:
                checked += 1
                if not any(a <= n <= b for n in done):
                    missing.append(f"{folder}/{name}:{a}: loop marked "
                                   "'omp simd' is not vectorised")
    for m in missing:
        print(m)
    print(f"check_vectorised: {checked} loops marked 'omp simd', "
          f"{len(missing)} problems")
    if checked == 0:
        print("check_vectorised: no marked loop found (wrong source dir?)")
        return 1
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
