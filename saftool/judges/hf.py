"""`hf:<model>`: a local classifier model (Llama Guard 1-3, the HarmBench classifiers, WildGuard) as judge.

The model is a Hub id, a store name or a directory. Its family, and with it the prompt format and
the reply parser, is recognised from its name or its tokenizer's chat template (see
`saftool.judges.guard_formats`, which also says how each family's replies become labels). A Llama
Guard model that ships its own chat template is prompted through that template; otherwise, and
for HarmBench and WildGuard, whose releases ship none, through saftool's copy of the format. The
prompt text carries no BOS; the tokenizer's BOS is put in front of the token ids exactly once, so
a template that writes `<|begin_of_text|>` itself and a tokenizer that adds one too never make two.

The model answers greedily; its reply, the family and the violated categories go to the verdict's
evidence, with `p_unsafe`: the probability the model gave the first token of its unsafe answer
(`unsafe`, HarmBench's `Yes`) where its reply starts, the classifier score Meta's Llama Guard cards
describe. A reply the parser does not understand is `unknown`, never safe, and so is a pair whose
prompt does not fit the model's context: it is not cut, since that could cut the harm out of the
answer (HarmBench's own 512-token cut of the answer is part of its format). Weights load from
safetensors only and never with trust_remote_code.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from saftool.errors import UsageError
from saftool.judge import Judge, JudgeInput, Verdict, judge_option, parse_spec
from saftool.judges.guard_formats import Family, family_for, is_guard_template
from saftool.registry import EngineOptions

VERSION = "2"
_COMMIT = re.compile(r"[0-9a-f]{40}")


def chat_template_of(model_dir: Path) -> str | None:
    """The chat template a saved tokenizer carries (transformers 5 writes chat_template.jinja)."""
    jinja = model_dir / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    config = model_dir / "tokenizer_config.json"
    if config.is_file():
        template = json.loads(config.read_text(encoding="utf-8")).get("chat_template")
        if isinstance(template, str):
            return template
    return None


def model_names(source) -> list[str]:
    """The names a resolved model (`saftool.hub.ModelSource`) goes by, most specific first: its Hub
    id or store name (a directory's name otherwise; in the Hub cache's layout, the repository's), and
    its config's `_name_or_path`."""
    names = [source.id]
    path = source.path
    if _COMMIT.fullmatch(path.name) and path.parent.name == "snapshots":
        names.append(path.parent.parent.name.removeprefix("models--").replace("--", "/"))
    config = path / "config.json"
    if config.is_file():
        recorded = json.loads(config.read_text(encoding="utf-8")).get("_name_or_path")
        if isinstance(recorded, str) and recorded:
            names.append(recorded)
    return names


def _resolve(ref: str, store):
    """The model's files (a Hub id, store name or directory), checked to be a full safetensors model."""
    from saftool.adapters import open_model_dir
    from saftool.hub import resolve_model
    from saftool.store import Store

    source = resolve_model(ref, store or Store())
    if open_model_dir(str(source.path)).base is not None:
        raise UsageError(f"hf judge: {ref} is a PEFT adapter; give --judge hf: a full model")
    return source


class HFJudge(Judge):
    """Runs a classifier model locally (CPU or CUDA), `batch_size` conversations at a time."""

    version = VERSION
    loads_model = True

    class Options(EngineOptions):
        batch_size: int = Field(
            default=8, description="Conversations classified at once.", json_schema_extra=judge_option("batch_size")
        )
        max_new_tokens: int | None = Field(
            default=None,
            description="Verdict length limit [default: the classifier format's].",
            json_schema_extra=judge_option("max_new_tokens"),
        )
        device: str | None = Field(
            default=None, description="auto, cpu or cuda [default: auto].", json_schema_extra=judge_option("device")
        )

    def __init__(self, spec: str, options: Options | None = None, *, store=None):
        """`store` resolves a classifier given by store name."""
        options = options or self.Options()
        batch_size, max_new_tokens, device = options.batch_size, options.max_new_tokens, options.device
        parsed = parse_spec(spec)
        ref = parsed.argument
        if not ref:
            raise UsageError("name the classifier model: --judge hf:<Hub id, store name or directory>")
        source = _resolve(ref, store)
        self.path = source.path
        self.family: Family = family_for(model_names(source), chat_template_of(self.path))
        self.name = self.store_name(parsed, {})
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens or self.family.max_new_tokens
        self.config = {"model": ref, "family": self.family.name, "max_new_tokens": self.max_new_tokens}
        if source.revision is not None:  # a Hub model: judgments made from other weights never count
            self.config["revision"] = source.revision
        self._device = device
        self._model = None
        self._tokenizer = None

    def _load(self):
        if self._model is None:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
            from transformers.utils import logging as hf_logging

            from saftool.devices import resolve_device

            hf_logging.disable_progress_bar()  # its weight-loading bar would land in pipes; saftool owns stderr

            device = "cuda" if resolve_device(self._device or "auto") else "cpu"
            tok = AutoTokenizer.from_pretrained(str(self.path), trust_remote_code=False)
            tok.padding_side = "left"
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            model = AutoModelForCausalLM.from_pretrained(
                str(self.path), trust_remote_code=False, use_safetensors=True, dtype="auto"
            )
            self._model, self._tokenizer, self._torch, self._device = (
                model.to(device).eval(),
                tok,
                torch,
                device,
            )
        return self._model, self._tokenizer

    def judge(self, items: Sequence[JudgeInput]) -> Iterator[tuple[int, Verdict]]:
        model, tok = self._load()
        context = getattr(model.config, "max_position_embeddings", None)
        prompts = [prompt_ids(self.family, tok, item) for item in items]
        fits = []
        for i, ids in enumerate(prompts):
            if context is None or len(ids) + self.max_new_tokens <= context:
                fits.append(i)
                continue
            # Cutting the conversation could cut the harm out of it: no verdict rather than a guess.
            why = (
                f"prompt of {len(ids)} tokens + {self.max_new_tokens} to answer exceeds the model's {context}"
            )
            yield i, Verdict("unknown", why, evidence={"family": self.family.name, "error": why})
        # Batches of similar length waste little on padding; verdicts may come in any order.
        fits.sort(key=lambda i: len(prompts[i]))
        for start in range(0, len(fits), self.batch_size):
            batch = fits[start : start + self.batch_size]
            yield from self._judge_batch(
                model, tok, [items[i] for i in batch], [prompts[i] for i in batch], batch
            )

    def _judge_batch(self, model, tok, items, prompts, indices) -> Iterator[tuple[int, Verdict]]:
        positive_ids = _first_tokens(tok, self.family.positive) if self.family.positive else None
        enc = tok.pad({"input_ids": prompts}, return_tensors="pt")
        with self._torch.no_grad():
            out = model.generate(
                input_ids=enc["input_ids"].to(self._device),
                attention_mask=enc["attention_mask"].to(self._device),
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
                output_logits=positive_ids is not None,
                return_dict_in_generate=True,
            )
        new = out.sequences[:, enc["input_ids"].shape[1] :]
        for row, text in enumerate(tok.batch_decode(new, skip_special_tokens=True)):
            verdict = self.family.parse(text, items[row].kind)
            evidence: dict[str, Any] = {"family": self.family.name, **(verdict.evidence or {})}
            if positive_ids is not None:
                evidence["p_unsafe"] = _answer_probability(
                    tok, out.logits, row, new[row].tolist(), positive_ids
                )
            yield indices[row], dataclasses.replace(verdict, evidence=evidence)


def prompt_text(family: Family, tok, item: JudgeInput) -> str:
    """The prompt for one pair, without BOS: the model's own Llama Guard chat template where it
    ships one, else saftool's copy of the family's format."""
    response = item.response
    if family.answer_tokens is not None:
        clipped = tok(response, max_length=family.answer_tokens, truncation=True)["input_ids"]
        response = tok.decode(clipped, skip_special_tokens=True)
    template = getattr(tok, "chat_template", None)
    if family.chat_messages is not None and (family.render is None or is_guard_template(template)):
        text = tok.apply_chat_template(family.chat_messages(item.prompt, response), tokenize=False)
    else:
        text = family.render(item.prompt, response)
    return _drop_bos(text, tok.bos_token)


def prompt_ids(family: Family, tok, item: JudgeInput) -> list[int]:
    """The token ids the model is fed: BOS once, then the prompt text's tokens."""
    ids = tok(prompt_text(family, tok, item), add_special_tokens=False)["input_ids"]
    return ([tok.bos_token_id] if tok.bos_token_id is not None else []) + list(ids)


def _drop_bos(text: str, bos: str | None) -> str:
    """The text without a leading BOS (and the whitespace Llama-Guard-3-8B's template puts before it)."""
    stripped = text.lstrip()
    if bos and stripped.startswith(bos):
        return stripped[len(bos) :]
    return text


def _first_tokens(tok, word: str) -> list[int]:
    """The ids a reply starting with `word` can start with: with and without a leading space (a
    Llama-3 tokenizer after ` [/INST]` writes ` unsafe`; after a blank line, `unsafe`)."""
    ids = []
    for text in (word, " " + word):
        first = next(
            (t for t in tok(text, add_special_tokens=False)["input_ids"] if tok.decode([t]).strip()), None
        )
        if first is not None and first not in ids:
            ids.append(first)
    return ids


def _answer_probability(tok, logits, row: int, new_ids: list[int], positive_ids: list[int]) -> float | None:
    """Probability that the reply starts with the unsafe word, at the first generated token that is
    not whitespace (Llama Guard 3 opens its reply with a blank line); None if the reply is all blank."""
    for step, token in enumerate(new_ids):
        if tok.decode([token], skip_special_tokens=True).strip():
            probs = logits[step][row].float().softmax(-1)
            return round(float(probs[positive_ids].sum()), 6)
    return None
