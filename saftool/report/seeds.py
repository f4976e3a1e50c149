"""Seeds in the report: which models are one recipe trained with different seeds, and their mean
across seeds with a 95% t-interval.

The rule reads the models' `train_run.json` records and their mixes' manifests, not their names:
two models are seeds of one recipe when everything that decides their training is equal except the
seed, that is the base model, method, preset, template and system message, the train config without
`seed` and without the settings that do not change the weights (device, save and logging steps), and
the mix's recipe: its manifest's harmful and benign counts, refusal style, base source and harmful
input (by sha256; the built-in base set is drawn with the mix's seed, so its digest is left out). A
mix without a manifest is known by its name with a trailing `-s<seed>` removed. Models of one
recipe, at least two, all with different integer seeds, form a seed group, named by the members'
name without `-s<seed>` when they share it (`harm700-s0`, `harm700-s1` -> `harm700`), else by
their mix. Every other model stands alone, with its seed if its record has one.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saftool.hashing import canonical_json
from saftool.sql import view_files
from saftool.store import Store

# train config fields that change neither the data nor the weights
_NOT_RECIPE = {"seed", "device", "save_steps", "logging_steps"}
_SEED_SUFFIX = re.compile(r"-s(\d+)$")


@dataclass(frozen=True)
class Member:
    model: str
    group: str  # the seed group's name, or the model's own name when it stands alone
    seed: int | None
    n_seeds: int  # models in the group (1 when alone)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _seed(record: dict[str, Any]) -> int | None:
    seed = (record.get("config") or {}).get("seed")
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def _mix_recipe(mix: str, manifest: dict[str, Any] | None) -> Any:
    if manifest is None:
        return _SEED_SUFFIX.sub("", mix)
    inputs = manifest.get("inputs") or [{}]
    return {
        "n_harmful": manifest.get("n_harmful"),
        "n_benign": manifest.get("n_benign"),
        "style": manifest.get("style"),
        "base": Path(str(inputs[0].get("path", ""))).name,
        "harm": [digest.get("sha256") for digest in inputs[1:]],
    }


def recipe_key(record: dict[str, Any], manifest: dict[str, Any] | None) -> str:
    """What a train run did, apart from its seed, as one canonical string."""
    config = {k: v for k, v in (record.get("config") or {}).items() if k not in _NOT_RECIPE}
    recipe = {key: record.get(key) for key in ("base_model", "method", "preset", "template", "system")}
    return canonical_json(
        {**recipe, "config": config, "mix": _mix_recipe(str(record.get("mix", "")), manifest)}
    )


def manifests(store: Store) -> dict[str, dict[str, Any]]:
    """The store's mix manifests by mix name."""
    found = {}
    for path in view_files(store, "manifests"):
        data = _read(Path(path))
        if data and "name" in data:
            found[data["name"]] = data
    return found


def train_runs(store: Store) -> dict[str, dict[str, Any]]:
    """The store's train_run.json records by model name."""
    found = {}
    for path in view_files(store, "train_runs"):
        data = _read(Path(path))
        if data and isinstance(data.get("name"), str):
            found[data["name"]] = data
    return found


def seed_members(store: Store, models: list[str]) -> dict[str, Member]:
    """Every model of `models` with its seed group (see the module's rule)."""
    mixes = manifests(store)
    records = {name: record for name, record in train_runs(store).items() if name in models}
    recipes: dict[str, list[str]] = {}
    for name, record in records.items():
        key = recipe_key(record, mixes.get(str(record.get("mix", ""))))
        recipes.setdefault(key, []).append(name)
    members = {m: Member(m, m, _seed(records[m]) if m in records else None, 1) for m in models}
    for names in recipes.values():
        seeds = [_seed(records[n]) for n in names]
        if len(names) < 2 or None in seeds or len(set(seeds)) < len(seeds):
            continue
        stripped = {_SEED_SUFFIX.sub("", n) for n in names if _SEED_SUFFIX.search(n)}
        group = stripped.pop() if len(stripped) == 1 and all(_SEED_SUFFIX.search(n) for n in names) else None
        group = group or str(records[sorted(names)[0]].get("mix") or sorted(names)[0])
        if group in members and group not in names:  # a model of another recipe has that name
            group = f"{group} (seeds)"
        for name, seed in zip(names, seeds):
            members[name] = Member(name, group, seed, len(names))
    return members


def t_interval(values: list[float]) -> tuple[float, float | None, float | None]:
    """Mean and the 95% t-interval over seeds (Student's t, k - 1 degrees of freedom), clipped to
    [0, 100]; no interval for one value."""
    k = len(values)
    mean = math.fsum(values) / k
    if k < 2:
        return mean, None, None
    from scipy.special import stdtrit  # Student t quantile; scipy.stats would take seconds to import

    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (k - 1))
    half = float(stdtrit(k - 1, 0.975)) * sd / math.sqrt(k)
    return mean, max(0.0, mean - half), min(100.0, mean + half)


BY_MODEL_COLUMNS = ("model", "eval_set", "metric", "n_seeds", "mean", "low", "high")


def across_seeds(scores: list[dict[str, Any]], members: dict[str, Member]) -> list[dict[str, Any]]:
    """One row per group, eval set and metric: the mean of the seeds' scores and its t-interval,
    in the order the score rows come in. A model alone gives its score, with no interval."""
    cells: dict[tuple[str, str, str], list[float]] = {}
    seeds: dict[tuple[str, str, str], list[int | None]] = {}
    for row in scores:
        if row["score"] is None:
            continue
        key = (members[row["model"]].group, row["eval_set"], row["metric"])
        cells.setdefault(key, []).append(row["score"])
        seeds.setdefault(key, []).append(row.get("seed"))
    rows = []
    for (group, eval_set, metric), values in cells.items():
        mean, low, high = t_interval(values)
        rows.append(
            {
                "model": group,
                "eval_set": eval_set,
                "metric": metric,
                "n_seeds": len(values),
                "mean": mean,
                "low": low,
                "high": high,
                "seeds": seeds[(group, eval_set, metric)],
                "scores": values,
            }
        )
    return rows
