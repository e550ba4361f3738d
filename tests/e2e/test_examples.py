#!/usr/bin/python3
"""The nightly examples (examples/cron, examples/systemd) work as shipped:
the wrapper runs the sample and treats 0 and 10 as success, pages on
anything else; the cron line is well-formed; systemd accepts the units."""
import json
import os
import re
import shutil
import subprocess
import unittest

import awtest
from awtest import BIN, SRC

EX = os.path.join(SRC, "examples")


class Examples(awtest.TempDirTest):
    def wrapper(self, **env):
        e = dict(os.environ, ARALWATCH_HOME=SRC, ARALWATCH_BIN=BIN,
                 ARALWATCH_OUT=os.path.join(self.tmp, "out"), **env)
        return subprocess.run([os.path.join(EX, "cron", "nightly.sh")],
                              env=e, capture_output=True, text=True,
                              timeout=300)

    def test_the_nightly_wrapper_runs_the_sample_and_pages_only_on_failure(self):
        page = os.path.join(self.tmp, "page.sh")
        paged = os.path.join(self.tmp, "paged")
        with open(page, "w") as f:
            f.write("#!/bin/sh\necho \"$1 $2\" >> %s\n" % paged)
        os.chmod(page, 0o755)
        # First night: the sample raises its alert (exit 10), no page.
        p = self.wrapper(ARALWATCH_PAGE=page)
        self.assertEqual(p.returncode, 10, p.stderr)
        events = [json.loads(line) for line in p.stderr.splitlines()]
        self.assertEqual(events[-1]["stage"], "summary")
        self.assertEqual(events[-1]["used"], 1)
        self.assertTrue(os.path.isfile(os.path.join(
            self.tmp, "out", "para_reservoir", "1988-08-14", "water.tif")))
        # Second night, nothing new: exit 0, no work, no page.
        p = self.wrapper(ARALWATCH_PAGE=page)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stderr.splitlines()[-1])["unchanged"], 1)
        self.assertFalse(os.path.exists(paged))
        # A broken config: exit 3, and the page command is called with it.
        bad = os.path.join(self.tmp, "bad.yaml")
        with open(bad, "w") as f:
            f.write("version: 1\nregion: {name: x}\nscenes: []\nindices: [nope]\n")
        p = self.wrapper(ARALWATCH_PAGE=page, ARALWATCH_CONFIG=bad)
        self.assertEqual(p.returncode, 3, p.stderr)
        with open(paged) as f:
            self.assertEqual(f.read(), "3 %s\n" % bad)

    def test_the_wrapper_makes_openmp_threads_wait_passively(self):
        # A fake binary reports the environment it was given.
        fake = os.path.join(self.tmp, "fake-aralwatch")
        seen = os.path.join(self.tmp, "seen")
        with open(fake, "w") as f:
            f.write("#!/bin/sh\necho \"${OMP_WAIT_POLICY:-unset}\" >> %s\n"
                    % seen)
        os.chmod(fake, 0o755)
        env = dict(os.environ)
        env.pop("OMP_WAIT_POLICY", None)
        for given, want in ((None, "passive"), ("active", "active")):
            e = dict(env, ARALWATCH_HOME=SRC, ARALWATCH_BIN=fake,
                     ARALWATCH_OUT=os.path.join(self.tmp, "out"))
            if given:
                e["OMP_WAIT_POLICY"] = given
            p = subprocess.run([os.path.join(EX, "cron", "nightly.sh")],
                               env=e, capture_output=True, text=True,
                               timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            with open(seen) as f:
                self.assertEqual(f.read().split()[-1], want)

    def test_the_cron_line_is_well_formed(self):
        with open(os.path.join(EX, "cron", "aralwatch.cron")) as f:
            jobs = [l for l in f.read().splitlines()
                    if l and not l.startswith("#") and "=" not in l.split()[0]]
        self.assertEqual(len(jobs), 1)
        fields = jobs[0].split()
        # minute hour day month weekday user command
        self.assertEqual(fields[:6], ["15", "2", "*", "*", "*", "aralwatch"])
        cmd = fields[6].replace("/opt/aralwatch", SRC)
        self.assertTrue(os.access(cmd, os.X_OK), cmd)

    def test_systemd_accepts_the_units(self):
        tool = shutil.which("systemd-analyze")
        if not tool:
            self.skipTest("systemd-analyze is not installed")
        for name in ("aralwatch.service", "aralwatch.timer"):
            with open(os.path.join(EX, "systemd", name)) as f:
                text = f.read().replace("/opt/aralwatch", SRC)
            with open(os.path.join(self.tmp, name), "w") as f:
                f.write(text)
        p = subprocess.run([tool, "verify",
                            os.path.join(self.tmp, "aralwatch.service"),
                            os.path.join(self.tmp, "aralwatch.timer")],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with open(os.path.join(self.tmp, "aralwatch.timer")) as f:
            cal = re.search(r"^OnCalendar=(.*)$", f.read(), re.M).group(1)
        p = subprocess.run([tool, "calendar", cal], capture_output=True,
                           text=True)
        self.assertIn("Normalized form: *-*-* 02:15:00", p.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
