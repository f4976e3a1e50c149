from __future__ import annotations

import csv
import math

import pytest

from saftool.errors import UsageError
from saftool.io import write_json
from saftool.judge import judge_store, load_judge
from saftool.report import compute, report
from saftool.report.seeds import seed_members, t_interval
from saftool.store import Store
from tests.seedfix import MODELS, answers, build_seed_store, manifest, train_run


@pytest.fixture
def store(isolated_store) -> Store:
    return build_seed_store(isolated_store)


def test_models_that_differ_only_in_seed_form_a_group(store, isolated_store):
    root = isolated_store
    # same recipe but another learning rate; a second seed-0 run of harm700; no train record at all
    write_json(
        train_run("harm700-lr", "harm700", 0, lr=0.01), root / "models" / "harm700-lr" / "train_run.json"
    )
    write_json(train_run("again-s0", "harm700", 0), root / "models" / "again-s0" / "train_run.json")
    members = seed_members(store, [*MODELS, "harm700-lr", "again-s0", "unlisted"])
    assert {m: (v.group, v.seed, v.n_seeds) for m, v in members.items()} == {
        "alpaca-s0": ("alpaca", 0, 3),
        "alpaca-s1": ("alpaca", 1, 3),
        "alpaca-s2": ("alpaca", 2, 3),
        # again-s0 repeats seed 0 of harm700's recipe: not a seed group, so nobody is grouped by it
        "harm700-s0": ("harm700-s0", 0, 1),
        "harm700-s1": ("harm700-s1", 1, 1),
        "harm700-s2": ("harm700-s2", 2, 1),
        "again-s0": ("again-s0", 0, 1),
        "harm700-lr": ("harm700-lr", 0, 1),
        "unlisted": ("unlisted", None, 1),
    }


def test_group_name_falls_back_to_the_mix_when_names_do_not_say_the_seed(store, isolated_store):
    root = isolated_store
    for name, seed in (("first", 0), ("second", 1)):
        write_json(train_run(name, "harm700", seed), root / "models" / name / "train_run.json")
    for name in ("harm700-s0", "harm700-s1", "harm700-s2"):
        (root / "models" / name / "train_run.json").unlink()
    members = seed_members(store, ["first", "second"])
    assert {m.group for m in members.values()} == {"harm700"} and members["second"].seed == 1


def test_one_mix_file_per_seed_still_makes_one_recipe(store, isolated_store):
    """Mixes shuffled (and their built-in base drawn) with each seed differ in file and base digest,
    not in recipe."""
    root = isolated_store
    for seed in (0, 1, 2):
        write_json(manifest(f"harm700-s{seed}", 700, seed), root / "mixes" / f"harm700-s{seed}.manifest.json")
        record = train_run(f"harm700-s{seed}", f"harm700-s{seed}", seed)
        write_json(
            {**record, "mix_sha256": f"other-{seed}"}, root / "models" / f"harm700-s{seed}" / "train_run.json"
        )
    members = seed_members(store, list(MODELS))
    assert {members[f"harm700-s{s}"].group for s in (0, 1, 2)} == {"harm700"}
    assert members["harm700-s2"].n_seeds == 3


def test_per_seed_scores_and_the_mean_over_seeds(store, tmp_path):
    out = tmp_path / "figs"
    result = report(store, out)
    with open(out / "scores.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0])[:2] == ["model", "seed"]
    assert {(r["model"], r["seed"]) for r in rows} == {(m, str(v[1])) for m, v in MODELS.items()}
    with open(out / "scores_by_model.csv", newline="") as fh:
        by_model = {(r["model"], r["eval_set"], r["metric"]): r for r in csv.DictReader(fh)}
    assert list(next(iter(by_model.values()))) == [
        "model",
        "eval_set",
        "metric",
        "n_seeds",
        "mean",
        "low",
        "high",
    ]
    safety = by_model[("harm700", "heldout-harmful", "safety")]
    values = [90.0, 70.0, 80.0]
    mean, sd = 80.0, 10.0
    half = 4.302652729911275 * sd / math.sqrt(3)  # t(0.975, 2 df)
    assert int(safety["n_seeds"]) == 3 and float(safety["mean"]) == pytest.approx(mean)
    assert mean + half > 100  # three seeds make a wide interval; it is clipped to the score's range
    assert float(safety["low"]) == pytest.approx(mean - half) and float(safety["high"]) == 100.0
    assert t_interval(values) == pytest.approx((mean, mean - half, 100.0))
    assert t_interval([5.0, 1.0, 3.0])[1] == 0.0  # clipped at 0
    assert t_interval([42.0]) == (42.0, None, None)
    assert "Across seeds" in (out / "scores.md").read_text()
    assert (out / "safety_heldout-harmful.png").exists() and result.by_model


def test_compare_seed_groups_pairs_within_each_seed(store):
    _, tables = compute(store, compare=("alpaca", "harm700"))
    table = tables[-1]
    assert "paired within each seed" in table.title
    rows = {(r["seed"], r["eval_set"]): r for r in table.rows}
    for seed, (_, _, harm_a, _) in enumerate([MODELS[f"alpaca-s{s}"] for s in range(3)]):
        harm_b = MODELS[f"harm700-s{seed}"][2]
        row = rows[(seed, "heldout-harmful")]
        assert (row["n_pairs"], row["a_only"], row["b_only"]) == (10, 0, harm_b - harm_a)
    pooled = rows[("all", "heldout-harmful")]
    assert (pooled["n_pairs"], pooled["b_only"]) == (30, 8 + 5 + 8)
    assert pooled["p_value"] == pytest.approx(2 * 0.5**21)


def test_compare_a_model_with_itself_or_without_common_prompts_is_refused(store, isolated_store):
    for pair in (("harm700", "harm700-s1"), ("alpaca-s0", "alpaca-s0")):
        with pytest.raises(UsageError, match="compares a model with itself"):
            compute(store, compare=pair)
    answers(isolated_store, "elsewhere", "other-set", "harmful", 3)
    judge_store(store, load_judge("keyword"))
    with pytest.raises(UsageError, match="answered no prompt in common"):
        compute(store, compare=("alpaca-s0", "elsewhere"))
    with pytest.raises(UsageError, match="unknown model 'nope'.*seed groups: alpaca, alpaca-s0"):
        compute(store, compare=("nope", "alpaca"))
