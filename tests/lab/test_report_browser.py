"""report.html renders in headless Chromium: the table and every image.

Skipped (with the reason) only where Chromium is absent and CI is not set; in CI it must run.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from optimlab.lab import plots, report
from optimlab.lab.results import json_safe

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Appended to a copy of the report: after load, write what rendered into the DOM.
PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  const rows = document.querySelectorAll('#results tbody tr').length;
  const t = document.querySelector('#results');
  const visible = t && t.getBoundingClientRect().height > 0 ? 1 : 0;
  document.body.setAttribute('data-probe', `images=${imgs.length} ok=${ok} rows=${rows} `
    + `table=${visible}`);
});
</script>"""


def render(path) -> str:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is required in CI (.ci/run installs it)")
        pytest.skip("chromium not installed: apt-get install chromium to run this test")
    profile = path.parent / "chromium-profile"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", f"--user-data-dir={profile}", "--virtual-time-budget=5000",
           "--dump-dom", path.as_uri()]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_report_renders_in_chromium(tmp_path, synthetic_runs):
    runs = json_safe(synthetic_runs)
    written = plots.write_plots(runs, tmp_path, task="classification", seeds=2)
    path = report.write_report(tmp_path, title="browser", runs=runs, config={},
                               environment={}, plots=written)
    probe = tmp_path / "probe.html"
    probe.write_text(path.read_text().replace("</body>", PROBE + "</body>"))
    dom = render(probe)
    m = re.search(r'data-probe="images=(\d+) ok=(\d+) rows=(\d+) table=(\d+)"', dom)
    assert m, dom[:500]
    images, ok, rows, table = map(int, m.groups())
    assert images == len(written) == 6
    assert ok == images
    assert rows == 3 and table == 1
