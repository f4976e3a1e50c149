"""`run --executor ray` on a local Ray started here (`ray.init(num_cpus=2)`), like a cluster's."""

from __future__ import annotations

import pytest

from saftool.cli import app
from tests.run import grids

ray = pytest.importorskip("ray", reason="needs ray: pip install 'saftool[ray]'")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def ray_grid(local_ray, tmp_path_factory):
    return tmp_path_factory.mktemp("ray-grid")


def test_grid_on_ray_equals_a_local_run(ray_grid, local_grid, runner, monkeypatch):
    monkeypatch.chdir(ray_grid)
    config = grids.write_config(ray_grid)
    result = runner.invoke(app, ["--store", str(ray_grid / "store"), "run", str(config), "--executor", "ray"])
    assert result.exit_code == 0, result.output
    assert "12 stages ran, 0 already done" in result.stderr
    logs = ray_grid / "store" / "runs" / "small.logs"
    assert len(list(logs.glob("*.log"))) == 12
    assert len(list((ray_grid / "store" / "runs" / "small.done").glob("*.json"))) == 12
    assert grids.snapshot(ray_grid / "store") == grids.snapshot(local_grid / "store")
    assert (ray_grid / "report" / "scores.csv").read_text() == (local_grid / "report" / "scores.csv").read_text()


def test_failed_stage_on_ray_never_runs_its_dependents(ray_grid, runner, monkeypatch):
    monkeypatch.chdir(ray_grid)
    config = grids.write_config(ray_grid, "bad-judge.toml", judge_args=["--no-such-option"])
    report = ray_grid / "report" / "index.html"
    report.unlink(missing_ok=True)
    result = runner.invoke(app, ["--store", str(ray_grid / "store"), "run", str(config), "--executor", "ray"])
    assert result.exit_code == 1
    assert "stage judge failed (FAILED, exit 2); not run: report" in result.stderr
    assert "small.logs/judge.log" in result.stderr and "no-such-option" in result.stderr
    assert not report.exists()
    assert ray.is_initialized()  # the test's Ray, which run joined, is left running
