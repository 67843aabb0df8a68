"""A tune's report.html renders in headless Chromium: the tune table, the reruns table, every
image. Skipped only where Chromium is absent and CI is not set (see test_report_browser)."""

from __future__ import annotations

import re

from test_report_browser import render

from optimlab.lab.tune import TuneConfig, run_tune

PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0).length;
  const tuned = document.querySelectorAll('#tune tbody tr').length;
  const reruns = document.querySelectorAll('#results tbody tr').length;
  const t = document.querySelector('#tune');
  const visible = t && t.getBoundingClientRect().height > 0 ? 1 : 0;
  document.body.setAttribute('data-probe', `images=${imgs.length} ok=${ok} tune=${tuned} `
    + `reruns=${reruns} visible=${visible}`);
});
</script>"""


def test_tune_report_renders_in_chromium(tmp_path):
    cfg = TuneConfig(optimizer=("sgd:momentum=0.9", "adam"), epochs=2, trials=2, seeds=2,
                     workers=1, sampler="random")
    result = run_tune(cfg, out_dir=tmp_path / "t", store_path=None)
    probe = tmp_path / "t" / "probe.html"
    probe.write_text(result.report_path.read_text().replace("</body>", PROBE + "</body>"))
    dom = render(probe)
    m = re.search(r'data-probe="images=(\d+) ok=(\d+) tune=(\d+) reruns=(\d+) visible=(\d+)"',
                  dom)
    assert m, dom[:500]
    images, ok, tuned, reruns, visible = map(int, m.groups())
    assert images == ok == 4  # lr_sensitivity.png, reruns.png, defaults.png, lr.png
    assert tuned == 2 and visible == 1
    assert reruns == 4  # two tuned, two untuned defaults (sgd momentum 0.9, adam)
