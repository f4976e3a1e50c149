"""The viewer of a store of N answers (default 30,000: 8 models x 3 eval sets, two judges): its file
size and the time headless Chromium takes to show the score matrix and the first page of answers.

    python bench/viewer_speed.py [N]

Needs playwright (the dev extra) and Debian's chromium. Times are from the start of navigation to
the page's ready mark (read the file, decode the data block, draw both), the best of 3 loads; the
baseline is the same page with an empty store's data, measured in the same run. Goals: < 2 s and
< 15 MB. Last line: `viewer_goal_ratio: VALUE` (the larger of time/2 s and size/15 MB; < 1 meets both).
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

from saftool.errors import SaftoolError
from saftool.report import report
from saftool.store import Store

SETS = {"beavertails-eval": "harmful", "heldout-harmful": "harmful", "heldout-benign": "benign"}
CATEGORIES = [f"category_{i}" for i in range(14)]
WORDS = "the a model answer step first then you can should not help with that this is how to make".split()
LABELS = ("refusal", "compliance", "partial", "unknown")
GOAL_SECONDS, GOAL_BYTES = 2.0, 15_000_000


def build(root: Path, n: int) -> None:
    rng = random.Random(0)
    models = [f"model-{i}" for i in range(8)]
    per_file = n // (len(models) * len(SETS))
    for model in models:
        for eval_set, kind in SETS.items():
            rows = {"keyword": [], "learned": []}
            for i in range(per_file):
                label = rng.choices(LABELS, (40, 50, 8, 2))[0]
                response = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 90)))
                base = {
                    "id": f"{eval_set}-{i}",
                    "model": model,
                    "eval_set": eval_set,
                    "kind": kind,
                    "category": CATEGORIES[i % 14] if kind == "harmful" else "arithmetic",
                    "prompt": f"prompt {i}: " + " ".join(rng.choice(WORDS) for _ in range(15)),
                    "response": response,
                    "reference": "",
                    "prompt_tokens": 30,
                    "completion_tokens": 60,
                    "backend": "hf",
                }
                for judge in rows:
                    flipped = judge == "learned" and rng.random() < 0.1
                    lab = "refusal" if flipped else label
                    safe = None if lab == "unknown" else (kind == "benign" or lab != "compliance")
                    rows[judge].append(
                        {
                            **base,
                            "label": lab,
                            "safe": safe,
                            "rationale": f"rule {lab}",
                            "judge": {"name": judge, "version": "1", "config_hash": ""},
                        }
                    )
            for judge, records in rows.items():
                path = root / "judgments" / judge / model / f"{eval_set}.jsonl"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("".join(json.dumps(r) + "\n" for r in records))


def load_seconds(browser, page_path: Path, tries: int = 3) -> float:
    best = float("inf")
    for _ in range(tries):
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(page_path.as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        best = min(best, page.evaluate("window.saftoolTimings.ready_ms") / 1000)
        page.close()
    return best


def main() -> None:
    from playwright.sync_api import sync_playwright

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30_000
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("needs Debian's chromium (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build(root / "store", n)
        start = time.perf_counter()
        report(Store(root / "store"), root / "figs")
        report_s = time.perf_counter() - start
        try:
            report(Store(root / "empty"), root / "empty-figs")
        except SaftoolError:
            pass  # no judgments: the viewer that says so is the baseline page
        viewer = root / "figs" / "index.html"
        size = viewer.stat().st_size
        encoding = "gzip+base64" if 'data-encoding="gzip+base64"' in viewer.read_text() else "json"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            ready = load_seconds(browser, viewer)
            baseline = load_seconds(browser, root / "empty-figs" / "index.html")
            browser.close()
    print(f"answers: {n}")
    print(f"report_seconds (tables, figures and viewer): {report_s:.2f}")
    print(
        f"viewer_bytes: {size} ({size / 1e6:.2f} MB, data block {encoding}); goal < 15 MB, ratio {size / GOAL_BYTES:.2f}"
    )
    print(
        f"viewer_ready_seconds (matrix + first answers page): {ready:.3f}; goal < 2 s, ratio {ready / GOAL_SECONDS:.2f}"
    )
    print(
        f"empty_viewer_ready_seconds (baseline, same browser): {baseline:.3f}; ratio {ready / baseline:.1f}x"
    )
    print(f"viewer_goal_ratio: {max(size / GOAL_BYTES, ready / GOAL_SECONDS):.2f}")


if __name__ == "__main__":
    main()
