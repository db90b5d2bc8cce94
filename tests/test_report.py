"""``fakescan report``: a self-contained page, checked in a real headless browser, and small
and quick for 100,000 rows."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def scanned(tiny_model, tmp_path_factory):
    from fakescan.data.synth import make_synth

    root = tmp_path_factory.mktemp("report")
    make_synth(root / "photos", n=200, seed=12, size_range=(64, 200))
    (root / "photos" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    out = root / "verdicts.csv"
    r = run_cli("scan", root / "photos", "--model", tiny_model, "--out", out, "--threshold",
                "0.4")
    assert r.returncode == 2, r.stderr  # the broken file
    return root, out


def test_report_is_self_contained_and_counts_right(scanned):
    root, verdicts = scanned
    r = run_cli("report", verdicts, "--out", root / "report.html", "--top", "30")
    assert r.returncode == 0, r.stderr
    page = (root / "report.html").read_text()
    assert not re.search(r'(src|href)="https?://', page)  # nothing fetched
    rows = list(csv.DictReader(open(verdicts)))
    fakes = sum(x["label"] == "fake" for x in rows)
    assert 'id="n-scanned">201<' in page and f'id="n-fake">{fakes:,}<' in page
    assert page.count('class="thumb"') == min(30, fakes)
    assert 'id="threshold"' in page and "threshold 0.400" in page
    code = next(x["error_code"] for x in rows if x["status"] == "error")
    assert f"<b>{code}</b>: 1 files" in page  # errors grouped by code


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (Debian package chromium)")
def test_report_in_a_headless_browser(scanned, tmp_path):
    root, verdicts = scanned
    html = root / "browser.html"
    r = run_cli("report", verdicts, "--out", html, "--top", "24")
    assert r.returncode == 0, r.stderr
    profile = ["--user-data-dir=" + str(tmp_path / "profile")]
    dom = subprocess.run([CHROMIUM, *FLAGS, *profile, "--dump-dom", html.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, *FLAGS, *profile, f"--screenshot={shot}",
                    "--window-size=1280,1400", html.as_uri()], capture_output=True, timeout=120)
    # what a person sees: the summary numbers, the thumbnails, the threshold on the histogram
    assert 'id="n-scanned">201<' in dom and 'id="n-errors">1<' in dom
    assert len(re.findall(r'<img class="thumb" src="data:image/jpeg;base64,', dom)) == 24
    assert re.search(r'<line id="threshold" x1="[0-9.]+"', dom)
    assert shot.is_file() and shot.stat().st_size > 50_000  # a page was drawn


def test_report_of_100k_rows_stays_small(tmp_path):
    from fakescan.data.synth import make_synth
    from fakescan.report import write_report

    make_synth(tmp_path / "img", n=20, seed=13, size_range=(64, 128))
    files = sorted(str(p) for p in (tmp_path / "img").rglob("*") if p.is_file())
    out = tmp_path / "big.csv"
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "status", "label", "p_fake", "threshold", "model", "error_code",
                    "error"])
        for i in range(100_000):
            if i % 97 == 0:
                w.writerow([f"/gone/{i}.jpg", "error", "", "", "", "m@1", "not_found", "gone"])
            else:
                p = (i * 7919 % 1000) / 1000
                w.writerow([files[i % len(files)], "ok", "fake" if p >= 0.5 else "real",
                            f"{p:.6f}", "0.5", "m@1", "", ""])
    r = write_report(Path(out), tmp_path / "big.html", top=200)
    assert r.rows == 100_000 and r.thumbnails == 200
    assert r.bytes < 3_000_000


@pytest.mark.parametrize("threshold", [0.3, 0.932, 0.999])
def test_the_threshold_label_stays_inside_the_histogram(threshold):
    """Near 1 the label goes to the line's left (it was cut off at the figure's edge)."""
    import numpy as np

    from fakescan.report import _histogram_svg

    svg = _histogram_svg(np.linspace(0, 1, 50), threshold)
    width = float(re.search(r'<svg id="histogram" width="(\d+)"', svg).group(1))
    x, anchor = re.search(r'<text x="([0-9.]+)" y="[0-9.]+" font-size="12" '
                          r'text-anchor="(start|end)">threshold', svg).groups()
    chars = len(f"threshold {threshold:.3f}") * 7  # ~7 px per character at 12 px
    left, right = (float(x), float(x) + chars) if anchor == "start" else (float(x) - chars,
                                                                           float(x))
    assert 0 <= left and right <= width, (left, right, width)
