"""The store: one folder of JSONL records that every stage reads from and writes to.

    store/
      prompts/    gen output: harmful and benign items (train or eval split)
      evals/      evaluation sets by name: gen --split eval output and `data pull` imports
      mixes/      NAME.jsonl training sets + NAME.manifest.json
      models/     NAME/ trained models (weights or a PEFT adapter) + NAME/train_run.json
      responses/  MODEL/EVAL.jsonl answers written by `infer`
      judgments/  JUDGE/MODEL/EVAL.jsonl verdicts written by `judge`
      judges/     NAME.profile.json: a judge's measured error rates (`judge eval --profile`)
      runs/       `run` state: the plan and which stages finished
      cache/      content-addressed API cache (never holds keys)

The root is `--store`, else `SAFTOOL_STORE`, else `./store`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from saftool.errors import UsageError

STORE_ENV = "SAFTOOL_STORE"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def resolve_store_root(flag: str | Path | None = None) -> Path:
    """Flag, then SAFTOOL_STORE, then ./store."""
    if flag:
        return Path(flag)
    env = os.environ.get(STORE_ENV)
    return Path(env) if env else Path("store")


def check_name(name: str, what: str = "name") -> str:
    """Names become file names: reject separators, '..' and anything odd."""
    if not name or "/" in name or "\\" in name or ".." in name or not _SAFE_NAME.match(name):
        raise UsageError(
            f"invalid {what} {name!r}: use letters, digits, '.', '_', '+' and '-' (no '/' or '..')"
        )
    return name


def slug(name: str) -> str:
    """A file-name form of a backend name such as 'llm:gpt-4o' or 'hf:/models/guard'."""
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", name).strip("_") or "_"


class Store:
    def __init__(self, root: str | Path | None = None):
        self.root = resolve_store_root(root)

    # folders
    @property
    def prompts(self) -> Path:
        return self.root / "prompts"

    @property
    def evals(self) -> Path:
        return self.root / "evals"

    @property
    def mixes(self) -> Path:
        return self.root / "mixes"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def responses(self) -> Path:
        return self.root / "responses"

    @property
    def judgments(self) -> Path:
        return self.root / "judgments"

    @property
    def judges(self) -> Path:
        return self.root / "judges"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    # named things
    def mix_path(self, name: str) -> Path:
        return self.mixes / f"{check_name(name, 'mix name')}.jsonl"

    def manifest_path(self, name: str) -> Path:
        return self.mixes / f"{check_name(name, 'mix name')}.manifest.json"

    def eval_path(self, name: str) -> Path:
        return self.evals / f"{check_name(name, 'eval set name')}.jsonl"

    def model_dir(self, name: str) -> Path:
        return self.models / check_name(name, "model name")

    def responses_path(self, model: str, eval_set: str) -> Path:
        return (
            self.responses
            / check_name(model, "model name")
            / f"{check_name(eval_set, 'eval set name')}.jsonl"
        )

    def judgments_path(self, judge: str, model: str, eval_set: str) -> Path:
        return self.judgments / slug(judge) / slug(model) / f"{slug(eval_set)}.jsonl"

    def profile_path(self, name: str) -> Path:
        return self.judges / f"{check_name(name, 'profile name')}.profile.json"

    # listings
    def mix_names(self) -> list[str]:
        return _stems(self.mixes, ".jsonl")

    def eval_names(self) -> list[str]:
        return _stems(self.evals, ".jsonl")

    def model_names(self) -> list[str]:
        if not self.models.is_dir():
            return []
        return sorted(p.name for p in self.models.iterdir() if p.is_dir() and not p.name.startswith("."))

    def require_mix(self, name: str) -> Path:
        return _require(self.mix_path(name), name, "mix", self.mix_names(), "saftool mix --name NAME")

    def require_eval(self, name: str) -> Path:
        return _require(self.eval_path(name), name, "eval set", self.eval_names(), "saftool data pull NAME")

    def require_model(self, name: str) -> Path:
        return _require(self.model_dir(name), name, "model", self.model_names(), "saftool train --mix NAME")

    def newest_prompts(self, kind: str = "harmful", split: str = "train") -> Path | None:
        """The most recently written gen file of this kind and split, if any."""
        if not self.prompts.is_dir():
            return None
        files = [p for p in self.prompts.glob(f"{kind}-{split}-*.jsonl") if not p.name.startswith(".")]
        return max(files, key=lambda p: (p.stat().st_mtime_ns, p.name)) if files else None


def _stems(folder: Path, suffix: str) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(suffix)] for p in folder.glob(f"*{suffix}") if not p.name.startswith("."))


def _require(path: Path, name: str, what: str, known: list[str], how: str) -> Path:
    if path.exists():
        return path
    listing = ", ".join(known) if known else f"none yet (make one with `{how}`)"
    raise UsageError(f"unknown {what} {name!r}; known: {listing}")
