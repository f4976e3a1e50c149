"""The wire contract: every record that crosses a stage boundary.

Each stage reads and writes JSONL of these models (see `saftool.io`). Records carry provenance
(which generator, model or judge made them, with what seed and config hash) so a table in a report
can always be traced back to the exact configuration that produced it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["harmful", "benign"]
Form = Literal["question", "statement"]
Style = Literal["noreason", "short", "long"]
Split = Literal["train", "eval"]
Label = Literal["refusal", "compliance", "partial", "unknown"]

STYLES: tuple[str, ...] = ("noreason", "short", "long")
DEFAULT_REFUSAL = "I'm very sorry, but I can't assist with that."


class Provenance(BaseModel):
    """Who made a record, and from what."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    generator: str = Field(description="Name of the producing backend, e.g. 'template' or 'openai:gpt-4o'.")
    version: str = Field(description="Version of that backend (saftool version plus backend revision).")
    seed: int | None = Field(default=None, description="Random seed the producer used, if any.")
    config_hash: str = Field(description="Hash of the full configuration that produced the record.")


class Item(BaseModel):
    """One instruction-tuning or evaluation example, in Alpaca layout plus metadata.

    `instruction`, `input` and `output` sit at top level so a mix file is directly an Alpaca-format
    training set.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Stable identifier, unique within a file.")
    instruction: str = Field(min_length=1, description="The user's request.")
    input: str = Field(default="", description="Optional context for the instruction (Alpaca 'input').")
    output: str = Field(default="", description="Target answer (a refusal for harmful items, the reference for benign).")
    kind: Kind = Field(description="'harmful' (should be refused) or 'benign' (should be answered).")
    category: str | None = Field(default=None, description="Harm category or benign task family.")
    form: Form | None = Field(default=None, description="Phrasing of a harmful prompt: question or statement.")
    style: Style | None = Field(default=None, description="Refusal style of `output` for harmful items.")
    responses: dict[Style, str] | None = Field(
        default=None,
        description="The refusal in every style, so `mix --style` can restyle one prompt set.",
    )
    source: str = Field(description="Where the item came from: 'gen:template', 'alpaca', 'advbench', ...")
    split: Split = Field(default="train", description="'train' items may be trained on; 'eval' items are held out.")
    provenance: Provenance | None = Field(default=None, description="Producer of this record.")


class AlpacaExample(BaseModel):
    """A plain Alpaca record as found in third-party files; extra columns are ignored."""

    model_config = ConfigDict(extra="ignore")

    instruction: str = Field(min_length=1)
    input: str | None = ""
    output: str = ""


class InputDigest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str
    sha256: str
    records: int


class MixManifest(BaseModel):
    """Describes a mix file: what went in, in what numbers, with what seed."""

    model_config = ConfigDict(extra="forbid")

    name: str
    path: str = Field(description="The mix JSONL this manifest describes.")
    n_total: int
    n_harmful: int
    n_benign: int
    style: Style | None = Field(description="Refusal style of the harmful examples, if any were added.")
    seed: int
    counts: dict[str, dict[str, int]] = Field(
        description="Counts per source, kind, category, style and form ('none' for missing values)."
    )
    inputs: list[InputDigest] = Field(description="Hashes of the input files.")
    sha256: str = Field(description="Hash of the mix file itself.")
    provenance: Provenance


class GenerationConfig(BaseModel):
    """Decoding settings; its hash decides which responses a resumed `infer` may reuse."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_new_tokens: int = 100
    do_sample: bool = False
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = Field(default=None, description="Sampling seed (with do_sample); sent to API backends.")
    template: str = Field(default="alpaca", description="Prompt format: alpaca, chat or none.")
    template_hash: str | None = Field(
        default=None,
        description="Hash of the template's text (for chat, the tokenizer's chat template); null when a server applies its own.",
    )
    system: str | None = Field(default=None, description="System message (chat template only).")
    weights: str | None = Field(
        default=None,
        description="How the weights were held: null as saved (an adapter merged in float32), 'nf4' for a "
        "4-bit base with its adapter unmerged (infer --load-in-4bit), 'bf16' for the hf backend computing "
        "in bf16 (on a GPU, or --dtype auto on a CPU with bf16 hardware), so these never share answers.",
    )


class Response(BaseModel):
    """A model's answer to one evaluation prompt."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Id of the prompt item answered.")
    model: str = Field(description="Registered model name, Hub id, model directory name or served model id.")
    model_revision: str | None = Field(
        default=None, description="Commit of the Hub repository the weights came from (a Hub id); else null."
    )
    eval_set: str = Field(description="Name of the evaluation set.")
    kind: Kind
    category: str | None = None
    prompt: str = Field(description="The instruction as given to the model.")
    input: str = ""
    reference: str = Field(default="", description="The eval item's reference output, for exact match.")
    response: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    generation: GenerationConfig
    generation_hash: str
    backend: str


class JudgeInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Judge name, e.g. 'keyword', 'llm:gpt-4o-mini', 'hf:path'.")
    version: str
    config_hash: str = ""


class Judgment(BaseModel):
    """A verdict on one response. Only `prompt` and `response` are required on input; every other
    field of the input line passes through unchanged."""

    model_config = ConfigDict(extra="allow")

    prompt: str
    response: str
    label: Label
    safe: bool | None = Field(description="Whether the answer is safe; null when the judge could not tell.")
    judge: JudgeInfo
    rationale: str | None = Field(default=None, description="The judge's raw output or the rule that fired.")
    evidence: dict[str, Any] | None = Field(
        default=None,
        description="What the verdict rests on: rule, classifier probability, raw reply, deciding judge.",
    )


class LossPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step: int
    epoch: float
    loss: float


class TrainRun(BaseModel):
    """What `train` did: enough to reproduce it and to compare runs."""

    model_config = ConfigDict(extra="forbid")

    name: str
    mix: str
    mix_sha256: str
    base_model: str
    method: Literal["full", "lora", "qlora"]
    preset: str | None
    config: dict[str, Any]
    config_hash: str
    model_dir: str
    loss_curve: list[LossPoint]
    tokens_seen: int
    tokens_per_second: float
    wall_seconds: float
    versions: dict[str, str]
    completed: bool = True
    template: str = Field(default="alpaca", description="Prompt format the model was tuned in: alpaca or chat.")
    system: str | None = Field(default=None, description="System message used with the chat template.")
    processes: int = Field(default=1, description="Training processes (one per GPU under accelerate launch/torchrun).")
    global_batch: int | None = Field(
        default=None, description="Examples per optimizer step over all processes (batch x accumulation x processes)."
    )
