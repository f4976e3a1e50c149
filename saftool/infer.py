"""`infer`: answer evaluation prompts with a trained (or served) model, resumably.

Prompts are asked in one of `template.TEMPLATES` (alpaca, the study's and the default; chat, the
model's own chat template; none, the bare instruction): a store model that was tuned in a format is
asked in it unless told otherwise, with a warning when told otherwise. They are answered by a backend
from `saftool.runtimes` and written as `Response` records to `store/responses/MODEL/EVAL.jsonl`,
one appended write per batch. A rerun skips every prompt already answered with the same generation
config (its hash), so a kill loses at most the batch in flight and nothing is ever duplicated;
answers made with another generation config are dropped from the file when the new run starts.
A second process answering the same set meanwhile waits for the first (`io.output_lock`), then
skips what it wrote.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from saftool import console
from saftool.errors import SaftoolError, UsageError
from saftool.hashing import config_hash
from saftool.hub import ModelSource
from saftool.io import STDIO, JsonlAppender, output_lock, read_json, read_records, repair_tail, write_records
from saftool.records import GenerationConfig, Item, Response, TrainRun
from saftool.runtimes import DEFAULT_RUNTIME, Prompt, Runtime
from saftool.stageconfig import default
from saftool.store import Store, check_name, slug
from saftool.template import TEMPLATES


class InferJob(BaseModel):
    """What `saftool infer` is asked to answer, with which backend, and how to ask: everything but
    the backend's own options (each backend's `Options`, `saftool.runtimes`). `saftool infer`'s
    options are these fields (`saftool.stageconfig.config_options`), and the run plan renders one into
    infer's argv."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(
        description="Model name in the store, a local model directory, a Hugging Face Hub id ORG/NAME[@REVISION] "
        "(from the HF cache; HF_HOME, HF_HUB_OFFLINE honoured), or a served model id (openai)."
    )
    eval_sets: str | None = Field(
        default=None, description="Comma-separated eval set names from store/evals/.", json_schema_extra={"flag": "--eval"}
    )
    input: str | None = Field(
        default=None, description="JSONL file of items to answer, or - for stdin.", json_schema_extra={"flag": "-i"}
    )
    name: str | None = Field(default=None, description="Eval set name for -i items [default: the file's stem, or stdin].")
    output: str | None = Field(
        default=None, description="With -i: FILE, or - for stdout [default: the store].", json_schema_extra={"flag": "-o"}
    )
    backend: str = Field(default=DEFAULT_RUNTIME, description="hf (transformers), vllm, or openai (any compatible server).")
    max_new_tokens: int = Field(
        default=default(GenerationConfig, "max_new_tokens"), ge=1, description="Answer length limit, as in the study."
    )
    sample: bool = Field(default=False, description="Sample instead of greedy decoding.")
    temperature: float = Field(default=1.0, description="Sampling temperature (with --sample).")
    top_p: float = Field(default=default(GenerationConfig, "top_p"), description="Nucleus sampling mass (with --sample).")
    seed: int | None = Field(default=None, description="Sampling seed (with --sample); also sent to API backends.")
    template: str | None = Field(
        default=None,
        description="alpaca (the study's), chat (the tokenizer's own chat template) or none (the bare instruction) "
        "[default: the format the store model was tuned in, else alpaca; chat for --backend openai].",
    )
    system: str | None = Field(default=None, description="System message (with --template chat).")

    def eval_names(self) -> list[str]:
        return [n.strip() for n in self.eval_sets.split(",") if n.strip()] if self.eval_sets else []

    def generation(self) -> GenerationConfig:
        """The decoding settings. Temperature and top-p count only when sampling; an unset template or
        system message is left out, so the model's own (`prompt_format`) decides."""
        settings = {"max_new_tokens": self.max_new_tokens, "do_sample": self.sample, "seed": self.seed if self.sample else None}
        if self.sample:
            settings.update(temperature=self.temperature, top_p=self.top_p)
        settings.update({k: v for k, v in {"template": self.template, "system": self.system}.items() if v is not None})
        return GenerationConfig(**settings)


@dataclass
class InferResult:
    eval_set: str
    path: str
    answered: int  # new responses written by this call
    skipped: int  # already answered with the same generation config
    completion_tokens: int
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0


def infer(
    runtime: Runtime,
    eval_sets: Sequence[str] = (),
    *,
    items: Iterable[Item] | None = None,
    items_name: str = "input",
    output: str | Path | None = None,
    store: Store | None = None,
    generation: GenerationConfig | None = None,
) -> list[InferResult]:
    """Answer the store's eval sets `eval_sets` (and/or `items`, named `items_name`) with `runtime`.

    `runtime` comes from `saftool.runtimes.load_runtime` (any backend: this asks it only what every
    runtime has). `output` (only with `items`) writes there instead of the store; `-` streams to
    stdout. A `generation` whose template was not set explicitly takes the one the model was tuned
    in (its train_run.json), else the runtime's default (alpaca; chat for an openai chat endpoint).
    Every bad name fails before any weights load and before anything is written.
    """
    store = store or Store()
    generation = generation or GenerationConfig()
    if not eval_sets and items is None:
        raise UsageError("nothing to answer: give eval set names or input items")
    if output is not None and (eval_sets or items is None):
        raise UsageError("an output file goes with input items only; eval sets are written to the store")
    source = runtime.source
    sets: list[tuple[str, list[Item]]] = [
        (name, list(read_records(store.require_eval(name), Item))) for name in eval_sets
    ]
    if items is not None:
        sets.append((check_name(items_name, "eval set name"), list(items)))
    tuned = _tuned_format(source) if runtime.loads_model_dir else None
    generation = prompt_format(runtime, generation, source.id, tuned)
    if runtime.weights is not None:  # its answers are not those of the weights as saved
        generation = generation.model_copy(update={"weights": runtime.weights})
    results = []
    for name, set_items in sets:
        if output is None:
            target = store.responses_path(slug(source.id), name)
        else:
            target = None if output == STDIO else Path(output)
        # a second process answering the same set waits, then skips what this one wrote
        with output_lock(target, wait=True) if target is not None else contextlib.nullcontext():
            results.append(_answer(runtime, name, set_items, generation, target))
    return results


def prompt_format(
    runtime, generation: GenerationConfig, model: str, tuned: tuple[str, str | None] | None = None
) -> GenerationConfig:
    """`generation` with its template settled and checked, and the hash of the template's text set.

    `tuned` is the (template, system message) the model was tuned with: it is the default, and asking
    in another format is allowed with a warning (it answers, but not as it was taught to).
    """
    given = generation.model_fields_set
    update: dict = {}
    if "template" not in given:
        update["template"] = tuned[0] if tuned else runtime.default_template
        if tuned and update["template"] == "chat" and "system" not in given:
            update["system"] = tuned[1]
    generation = generation.model_copy(update=update)
    if generation.template not in TEMPLATES:
        raise UsageError(f"unknown template {generation.template!r}; choose one of: {', '.join(TEMPLATES)}")
    if generation.system is not None and generation.template != "chat":
        raise UsageError(f"--system is a chat turn: it goes with --template chat, not {generation.template}")
    text = runtime.prompt_template(generation, model)
    if tuned and (generation.template, generation.system) != tuned:
        was = f"--template {tuned[0]}" + (f" --system {tuned[1]!r}" if tuned[1] else "")
        now = f"--template {generation.template}" + (f" --system {generation.system!r}" if generation.system else "")
        console.warn(f"{model} was tuned with {was} (train_run.json) but is asked with {now}")
    return generation.model_copy(update={"template_hash": config_hash(text) if text is not None else None})


def _tuned_format(source: ModelSource) -> tuple[str, str | None] | None:
    """(template, system message) from a trained model's train_run.json, if it has one."""
    path = source.path / "train_run.json"
    if not path.is_file():
        return None
    try:
        run = read_json(path, TrainRun)
    except SaftoolError:
        return None
    return run.template, run.system


def _answer(runtime: Runtime, eval_set, items, generation, target: Path | None) -> InferResult:
    source = runtime.source
    gen_hash = config_hash(generation)
    done = _answered(target, gen_hash, source.revision) if target is not None else set()
    todo = [item for item in items if item.id not in done]
    path = str(target) if target is not None else STDIO
    console.info(f"infer {source.id} on {eval_set}: {len(todo)} prompts ({len(items) - len(todo)} already answered)")
    if not todo:
        return InferResult(eval_set, path, 0, len(items), 0, 0.0)
    started = time.monotonic()
    tokens = 0
    prompts = [Prompt(item.instruction, item.input) for item in todo]
    batch_size = runtime.batch_size
    written = 0
    # the appender opens the file at its first answer: a rerun with nothing left, or a run that fails
    # before answering, leaves the store as it was
    sink = JsonlAppender(target) if target is not None else None
    pending: list[Response] = []

    def flush() -> None:
        nonlocal written
        if sink is not None:
            sink.write(pending)
        else:
            write_records(pending, STDIO)
        written += len(pending)
        pending.clear()

    try:
        with console.progress(f"infer {eval_set}", len(todo)) as bar:
            for i, completion in runtime.generate(prompts, generation):
                item = todo[i]
                tokens += completion.completion_tokens
                pending.append(
                    Response(
                        id=item.id,
                        model=source.id,
                        model_revision=source.revision,
                        eval_set=eval_set,
                        kind=item.kind,
                        category=item.category,
                        prompt=item.instruction,
                        input=item.input,
                        reference=item.output if item.kind == "benign" else "",
                        response=completion.text,
                        prompt_tokens=completion.prompt_tokens,
                        completion_tokens=completion.completion_tokens,
                        generation=generation,
                        generation_hash=gen_hash,
                        backend=runtime.name,
                    )
                )
                bar.advance()
                if len(pending) >= batch_size:
                    flush()
    finally:
        if pending:
            flush()
        if sink is not None:
            sink.close()
    return InferResult(
        eval_set=eval_set,
        path=path,
        answered=written,
        skipped=len(items) - len(todo),
        completion_tokens=tokens,
        seconds=time.monotonic() - started,
    )


def _answered(path: Path, gen_hash: str, revision: str | None) -> set[str]:
    """Ids answered with this generation config by this revision of the model; drops other answers
    (another config, or another commit of a Hub model) from the file."""
    if not path.exists():
        return set()
    repair_tail(path)
    current: dict[str, Response] = {}
    stale = 0
    for response in read_records(path, Response, unique=None):
        if response.generation_hash != gen_hash or response.model_revision != revision:
            stale += 1
        else:
            current.setdefault(response.id, response)
    if stale:
        console.info(f"{path}: dropping {stale} responses made with another generation config or model revision")
        write_records(current.values(), path)
    return set(current)
