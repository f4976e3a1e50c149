from __future__ import annotations

import csv
import math

import pytest

from saftool.errors import UsageError
from saftool.io import write_json, write_records
from saftool.judge import judge_store, load_judge
from saftool.report import compute, report
from saftool.report_seeds import seed_members, t_interval
from saftool.store import Store
from tests.storefix import COMPLY, REFUSE

# model -> (mix, seed, refusals of 10 harmful prompts, refusals of 10 benign ones)
MODELS = {
    "alpaca-s0": ("alpaca", 0, 1, 0),
    "alpaca-s1": ("alpaca", 1, 2, 1),
    "alpaca-s2": ("alpaca", 2, 0, 0),
    "harm700-s0": ("harm700", 0, 9, 2),
    "harm700-s1": ("harm700", 1, 7, 3),
    "harm700-s2": ("harm700", 2, 8, 1),
}


def _train_run(name: str, mix: str, seed: int, lr: float = 0.003) -> dict:
    return {
        "name": name,
        "mix": mix,
        "mix_sha256": f"sha-{name}",  # the shuffle differs per seed, so the mix file does too
        "base_model": "saftool:tiny",
        "method": "full",
        "preset": "tiny",
        "config": {"seed": seed, "lr": lr, "epochs": 8.0, "device": "auto"},
        "config_hash": f"hash-{name}",
        "model_dir": f"/store/models/{name}",
        "loss_curve": [],
        "tokens_seen": 1,
        "tokens_per_second": 1.0,
        "wall_seconds": 1.0,
        "versions": {},
    }


def _manifest(name: str, n_harmful: int, seed: int) -> dict:
    return {
        "name": name,
        "path": f"mixes/{name}.jsonl",
        "n_total": 100 + n_harmful,
        "n_harmful": n_harmful,
        "n_benign": 100,
        "style": "noreason" if n_harmful else None,
        "seed": seed,
        "counts": {},
        "inputs": [{"path": "builtin:benign", "sha256": f"base-{seed}", "records": 100}]
        + ([{"path": "harm.jsonl", "sha256": "harm", "records": 700}] if n_harmful else []),
        "sha256": f"mix-{name}-{seed}",
        "provenance": {"generator": "mix", "version": "0", "seed": seed, "config_hash": "0"},
    }


def _answers(root, model: str, eval_set: str, kind: str, refusals: int, n: int = 10) -> None:
    rows = [
        {
            "id": f"{eval_set}-{i}",
            "model": model,
            "eval_set": eval_set,
            "kind": kind,
            "prompt": f"{kind} prompt {i}",
            "response": REFUSE if i < refusals else COMPLY,
        }
        for i in range(n)
    ]
    write_records(rows, root / "responses" / model / f"{eval_set}.jsonl")


@pytest.fixture
def store(isolated_store) -> Store:
    root = isolated_store
    for model, (mix, seed, harm_ref, benign_ref) in MODELS.items():
        mix_name = f"{mix}-s{seed}"  # one mix file per seed; their manifests share the recipe
        write_json(
            _manifest(mix_name, 700 if mix == "harm700" else 0, seed),
            root / "mixes" / f"{mix_name}.manifest.json",
        )
        write_json(_train_run(model, mix_name, seed), root / "models" / model / "train_run.json")
        _answers(root, model, "heldout-harmful", "harmful", harm_ref)
        _answers(root, model, "heldout-benign", "benign", benign_ref)
    s = Store(root)
    judge_store(s, load_judge("keyword"))
    return s


def test_models_that_differ_only_in_seed_form_a_group(store, isolated_store):
    root = isolated_store
    # same recipe but another learning rate; a second seed-0 run of harm700; no train record at all
    write_json(
        _train_run("harm700-lr", "harm700-s0", 0, lr=0.01), root / "models" / "harm700-lr" / "train_run.json"
    )
    write_json(_train_run("again-s0", "harm700-s0", 0), root / "models" / "again-s0" / "train_run.json")
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
        write_json(_train_run(name, "harm700-s0", seed), root / "models" / name / "train_run.json")
    for name in ("harm700-s0", "harm700-s1", "harm700-s2"):
        (root / "models" / name / "train_run.json").unlink()
    members = seed_members(store, ["first", "second"])
    assert {m.group for m in members.values()} == {"harm700-s0"} and members["second"].seed == 1


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
    _answers(isolated_store, "elsewhere", "other-set", "harmful", 3)
    judge_store(store, load_judge("keyword"))
    with pytest.raises(UsageError, match="answered no prompt in common"):
        compute(store, compare=("alpaca-s0", "elsewhere"))
    with pytest.raises(UsageError, match="unknown model 'nope'.*seed groups: alpaca, alpaca-s0"):
        compute(store, compare=("nope", "alpaca"))
