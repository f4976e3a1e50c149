"""Conformance of the local backends with transformers, over the architectures of archfix.ARCHS.

Reference: `model.generate` on one prompt at a time, from the prompt ids transformers itself makes
(`tokenizer(text)` for a text template, `apply_chat_template(..., add_generation_prompt=True)` for
chat), stopping where the model's generation_config says. vLLM and CUDA checks are marked `gpu` and
run on a GPU machine (`pytest -m gpu tests/runtimes`); here they skip.
"""

from __future__ import annotations

import importlib.util

import pytest

from saftool.errors import UsageError
from saftool.records import GenerationConfig
from saftool.runtimes import Prompt
from saftool.runtimes.hf import HFRuntime
from saftool.template import chat_messages, format_prompt
from tests.hubfix import COMMIT, cache_model
from tests.modelfix import eval_items
from tests.runtimes.archfix import ARCHS, build_model

NEW = 12
PROMPTS = [Prompt(i.instruction, i.input) for i in eval_items(6)[:7]]
CHAT = [name for name, arch in ARCHS.items() if arch.chat_template]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Each architecture's model directory, built on first use."""
    folder, made = tmp_path_factory.mktemp("archs"), {}

    def get(name: str):
        if name not in made:
            made[name] = build_model(name, folder / name)
        return made[name]

    return get


def _template(name: str) -> str:
    return "chat" if ARCHS[name].chat_template else "alpaca"


def _reference(runtime: HFRuntime, prompts, template: str, context: int) -> list[tuple[str, int]]:
    """(answer, tokens generated) per prompt from `generate`, one prompt at a time; a prompt past the
    context is left to the cut rule's own test, so here prompts fit."""
    import torch

    tok, model, answers = runtime.tokenizer, runtime.model, []
    stops = model.generation_config.eos_token_id
    stops = {stops} if isinstance(stops, int) else set(stops)
    for p in prompts:
        if template == "chat":
            ids = tok.apply_chat_template(chat_messages(p.instruction, p.input), add_generation_prompt=True)[
                "input_ids"
            ]
        else:
            ids = tok(format_prompt(p.instruction, p.input))["input_ids"]
        assert len(ids) + NEW <= context
        with torch.inference_mode():
            out = model.generate(torch.tensor([ids]), max_new_tokens=NEW, do_sample=False)
        new = out[0, len(ids) :].tolist()
        answer = new[:-1] if new and new[-1] in stops else new
        answers.append((tok.decode(answer, skip_special_tokens=True).strip(), len(new)))
    return answers


def _fitting(runtime, template):
    """The prompts that fit the model's context with the answer (GPT-2 here has 128 positions, Llama-2 96)."""
    from saftool.runtimes.local import context_length, encode_prompts

    gen = GenerationConfig(template=template)
    context = context_length(runtime.config)
    fits = [
        p
        for p, e in zip(PROMPTS, encode_prompts(runtime.tokenizer, PROMPTS, gen))
        if len(e.ids) + NEW <= context
    ]
    return fits or [Prompt("Say hi.")], context


@pytest.mark.parametrize("name", list(ARCHS))
def test_hf_greedy_equals_generate_and_stops_at_every_stop_token(built, name):
    runtime = HFRuntime(str(built(name)), HFRuntime.Options(batch_size=3, device="cpu"))
    template = _template(name)
    prompts, context = _fitting(runtime, template)
    got = dict(runtime.generate(prompts, GenerationConfig(max_new_tokens=NEW, template=template)))
    answers = [(got[i].text, got[i].completion_tokens) for i in range(len(prompts))]
    assert answers == _reference(runtime, prompts, template, context)
    if ARCHS[name].extra_stop != "":  # taught to stop mid-answer at its second stop token
        assert any(n < NEW for _, n in answers), "no answer ended at a stop token"


@pytest.mark.parametrize(("name", "decoder"), [("llama3", "paged"), ("llama3", "loop"), ("qwen2", "paged")])
def test_other_greedy_paths_equal_generate(built, name, decoder):
    """transformers' generate_batch (the CUDA default) and the batch loop, here on the CPU."""
    runtime = HFRuntime(str(built(name)), HFRuntime.Options(batch_size=3, device="cpu", decoder=decoder))
    prompts, context = _fitting(runtime, "chat")
    got = dict(runtime.generate(prompts, GenerationConfig(max_new_tokens=NEW, template="chat")))
    assert [(got[i].text, got[i].completion_tokens) for i in range(len(prompts))] == _reference(
        runtime, prompts, "chat", context
    )


def test_stop_tokens_come_from_the_tokenizer_and_generation_config(built):
    """An int or a list in generation_config, with the tokenizer's EOS; GPT-2's ordinary-token stop
    never shows in an answer."""
    expected = {
        "llama2": ["</s>"],
        "llama3": ["<|end_of_text|>", "<|eot_id|>"],
        "qwen2": ["<|im_end|>", "<|endoftext|>"],
        "gemma2": ["<eos>", "<end_of_turn>"],
    }
    for name, tokens in expected.items():
        runtime = HFRuntime(str(built(name)), HFRuntime.Options(device="cpu"))
        assert runtime.stops == runtime.tokenizer.convert_tokens_to_ids(tokens)
    runtime = HFRuntime(str(built("gpt2")), HFRuntime.Options(batch_size=3, device="cpu"))
    eos, ordinary = runtime.stops
    word = runtime.tokenizer.decode([ordinary])
    assert eos == runtime.tokenizer.eos_token_id and word.strip()
    prompts, _ = _fitting(runtime, "alpaca")
    got = dict(runtime.generate(prompts, GenerationConfig(max_new_tokens=NEW)))
    stopped = [c for c in got.values() if c.completion_tokens < NEW]
    assert stopped and all(word not in c.text for c in stopped)
    with pytest.raises(UsageError, match="--decoder slots runs Llama-family models only, not gpt2"):
        HFRuntime(str(built("gpt2")), HFRuntime.Options(device="cpu", decoder="slots"))


@pytest.mark.parametrize("name", CHAT)
def test_chat_prompts_are_apply_chat_template(built, name):
    """Token for token what apply_chat_template(add_generation_prompt=True) gives, BOS exactly once;
    a system message where the template takes one, and the template's own refusal where it does not."""
    from saftool.runtimes.local import check_template, encode_prompts

    runtime = HFRuntime(str(built(name)), HFRuntime.Options(device="cpu"))
    tok = runtime.tokenizer
    for system in (None, "You answer briefly."):
        gen = GenerationConfig(template="chat", system=system)
        if system and name in ("mistral", "gemma2"):
            with pytest.raises(
                UsageError, match=f"--template chat: {name}'s chat template refuses the prompt"
            ):
                check_template(tok, gen, name)
            continue
        check_template(tok, gen, name)
        for p, e in zip(PROMPTS, encode_prompts(tok, PROMPTS, gen)):
            messages = chat_messages(p.instruction, p.input, system)
            assert e.ids == tok.apply_chat_template(messages, add_generation_prompt=True)["input_ids"]
            if tok.bos_token_id is not None and ARCHS[name].bos:
                assert e.ids[0] == tok.bos_token_id and e.ids.count(tok.bos_token_id) == 1
            # the head a cut keeps is the chat preamble, up to where the instruction starts
            assert tok.decode(e.ids[e.head :]).lstrip().startswith(p.instruction[:10].strip())


@pytest.mark.parametrize("name", ["llama2", "gpt2", "llama3"])
def test_a_prompt_past_the_context_keeps_bos_preamble_and_end(built, name):
    """Cut to context minus the answer: BOS and the template's preamble stay, the middle goes, the
    instruction's last words and the answer cue stay; the answer is generate's on the cut prompt."""
    import torch

    from saftool.runtimes.local import context_length

    runtime = HFRuntime(str(built(name)), HFRuntime.Options(device="cpu"))
    tok, context = runtime.tokenizer, context_length(runtime.config)
    long = Prompt(
        " ".join(["Tell me about the weather in the mountains."] * 120) + " Now reverse the word apple."
    )
    template = _template(name)
    [(_, answer)] = list(runtime.generate([long], GenerationConfig(max_new_tokens=NEW, template=template)))
    assert answer.prompt_tokens == context - NEW
    if template == "chat":
        full = tok.apply_chat_template(chat_messages(long.instruction), add_generation_prompt=True)[
            "input_ids"
        ]
    else:
        full = tok(format_prompt(long.instruction))["input_ids"]
    from saftool.runtimes.local import encode_prompts, fit_context

    [kept] = fit_context(encode_prompts(tok, [long], GenerationConfig(template=template)), context, NEW)
    head = encode_prompts(tok, [long], GenerationConfig(template=template))[0].head
    assert kept[:head] == full[:head] and kept[head:] == full[len(full) - (len(kept) - head) :]
    if ARCHS[name].bos:
        assert kept[0] == tok.bos_token_id
    assert tok.decode(kept[-12:]).endswith(tok.decode(full[-12:]))  # the answer cue survives
    with torch.inference_mode():
        out = runtime.model.generate(torch.tensor([kept]), max_new_tokens=NEW, do_sample=False)
    assert answer.completion_tokens == out.shape[1] - len(kept)


def test_a_hub_id_resolves_from_an_offline_cache(built, tmp_path, monkeypatch):
    """ORG/NAME from a cache laid out as the Hub lays it out (blobs, snapshot links, refs/main), with
    HF_HUB_OFFLINE=1: the runtime loads it and reads its stop tokens there."""
    from saftool.hub import resolve_model

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache_model(tmp_path / "hf", "meta-llama/Meta-Llama-3-8B-Instruct", built("llama3"))
    source = resolve_model("meta-llama/Meta-Llama-3-8B-Instruct@main")
    assert (source.id, source.revision) == ("meta-llama/Meta-Llama-3-8B-Instruct", COMMIT)
    runtime = HFRuntime(str(source.path), HFRuntime.Options(device="cpu"))
    assert runtime.stops == runtime.tokenizer.convert_tokens_to_ids(["<|end_of_text|>", "<|eot_id|>"])


def test_the_kv_cache_is_bounded_by_free_memory(built, monkeypatch):
    """--max-memory of the free memory caps the slots, whatever --batch-size asks; the text stays the
    one-prompt answer. Llama-2-7B's arithmetic: 0.5 MiB of bf16 keys and values per position."""
    from transformers import AutoConfig

    from saftool.runtimes import hf
    from saftool.runtimes.local import encode_prompts, kv_bytes_per_token, rows_that_fit

    llama2_7b = AutoConfig.for_model(
        "llama", hidden_size=4096, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32
    )
    per_token = kv_bytes_per_token(llama2_7b, 2)
    assert per_token == 2 * 32 * 32 * 128 * 2 == 512 * 1024
    # seed-safe's 12,600-token prompt is cut to 4,096 positions first; 64 of those would ask for 128 GiB
    row = per_token * 4096
    assert rows_that_fit(80 * 2**30, 0.8, row, 64) == 32
    assert rows_that_fit(80 * 2**30, 0.8, per_token * 612, 64) == 64
    with pytest.raises(UsageError, match=r"--max-memory 0.01: 0.8 GiB of the 80.0 GiB free holds no prompt"):
        rows_that_fit(80 * 2**30, 0.01, row, 64)
    runtime = HFRuntime(str(built("llama3")), HFRuntime.Options(batch_size=64, device="cpu", max_memory=0.5))
    prompts, context = _fitting(runtime, "chat")
    gen = GenerationConfig(max_new_tokens=NEW, template="chat")
    span = max(len(e.ids) for e in encode_prompts(runtime.tokenizer, prompts, gen)) + NEW
    row = kv_bytes_per_token(runtime.config, 4) * span
    monkeypatch.setattr(hf, "free_memory", lambda device: int(2.5 * row / 0.5))  # half of it holds 2 slots
    slots = []
    real = hf._SlotDecoder.__init__

    def counting(self, model, layers, n, *args):
        slots.append(n)
        real(self, model, layers, n, *args)

    monkeypatch.setattr(hf._SlotDecoder, "__init__", counting)
    got = dict(runtime.generate(prompts, gen))
    assert slots == [2]
    assert [(got[i].text, got[i].completion_tokens) for i in range(len(prompts))] == _reference(
        runtime, prompts, "chat", context
    )


needs_vllm = [
    pytest.mark.gpu,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="needs the vllm extra and a GPU"),
]


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.parametrize("name", list(ARCHS))
def test_cuda_greedy_paths_agree(built, name):
    """On a GPU: the default path (generate_batch, bf16) and the loop answer as generate does."""
    if not _cuda():
        pytest.skip("needs a CUDA device")
    runtime = HFRuntime(str(built(name)), HFRuntime.Options(batch_size=3, device="cuda"))
    template = _template(name)
    prompts, context = _fitting(runtime, template)
    reference = _reference(runtime, prompts, template, context)
    for decoder in ("auto", "loop") + (("slots",) if ARCHS[name].model_type == "llama" else ()):
        runtime.options = HFRuntime.Options(batch_size=3, device="cuda", decoder=decoder)
        got = dict(runtime.generate(prompts, GenerationConfig(max_new_tokens=NEW, template=template)))
        same = sum((got[i].text, got[i].completion_tokens) == reference[i] for i in range(len(prompts)))
        assert same == len(prompts), f"{decoder}: {same} of {len(prompts)} identical"


@pytest.mark.parametrize("name", list(ARCHS))
@pytest.mark.gpu
def test_vllm_greedy_equals_hf(built, name):
    """vLLM answers as the hf backend does: same prompts (token ids), stops, dtype, cut."""
    if importlib.util.find_spec("vllm") is None or not _cuda():
        pytest.skip("needs the vllm extra and a GPU")
    from saftool.runtimes.vllm import VLLMRuntime

    template = _template(name)
    gen = GenerationConfig(max_new_tokens=NEW, template=template)
    hf_runtime = HFRuntime(str(built(name)), HFRuntime.Options(device="cuda"))
    prompts, _ = _fitting(hf_runtime, template)
    want = dict(hf_runtime.generate(prompts, gen))
    got = dict(VLLMRuntime(str(built(name)), VLLMRuntime.Options(max_memory=0.3)).generate(prompts, gen))
    assert [(got[i].text, got[i].completion_tokens) for i in got] == [
        (want[i].text, want[i].completion_tokens) for i in got
    ]


def test_long_prompts_get_their_own_slots_and_prefill(built, monkeypatch):
    """A few prompts far longer than the rest are answered in a pass of their own, whose slots alone are
    sized for them, and prefilled without the short ones padded to their length; the text stays the
    one-prompt answer."""
    from saftool.runtimes import hf
    from saftool.runtimes.local import encode_prompts

    runtime = HFRuntime(str(built("llama3")), HFRuntime.Options(batch_size=3, device="cpu"))
    short, context = _fitting(runtime, "chat")
    long = Prompt(" ".join(["Summarise the history of the bicycle in one line."] * 12))
    prompts = [*short[:3], long, *short[3:]]
    gen = GenerationConfig(max_new_tokens=NEW, template="chat")
    lengths = [len(e.ids) for e in encode_prompts(runtime.tokenizer, prompts, gen)]
    assert max(lengths) + NEW <= context and max(lengths) > 4 * sorted(lengths)[-2]
    passes, prefills = [], []
    real_init, real_prefill = hf._SlotDecoder.__init__, hf._SlotDecoder.prefill

    def sized(self, model, layers, slots, span, *args):
        passes.append((slots, span))
        real_init(self, model, layers, slots, span, *args)

    def prefill(self, group, at):
        prefills.append(sorted(len(ids) for ids in group))
        return real_prefill(self, group, at)

    monkeypatch.setattr(hf._SlotDecoder, "__init__", sized)
    monkeypatch.setattr(hf._SlotDecoder, "prefill", prefill)
    got = dict(runtime.generate(prompts, gen))
    rest = sorted(lengths)[-2] + NEW
    assert passes == [(1, max(lengths) + NEW), (3, rest)]
    assert [max(lengths)] in prefills and all(len(g) == 1 or max(g) < max(lengths) for g in prefills)
    assert [(got[i].text, got[i].completion_tokens) for i in range(len(prompts))] == _reference(
        runtime, prompts, "chat", context
    )


def test_slot_passes_and_prefill_groups():
    from saftool.runtimes.hf import prefill_groups, slot_passes

    seed_safe_like = [3590, 3314, 2920, 2238, 1494, 1489, 937, 873, 821, 766, 700, 652] + [300 - 4 * i for i in range(60)]
    spans = [n + 100 for n in seed_safe_like]
    # rank 64 holds a 96-token prompt (span 196): the 14 prompts of spans over 392 get their own pass
    assert slot_passes(spans, 64) == [slice(0, 14), slice(14, 72)]
    assert slot_passes(spans[:64], 64) == [slice(0, 64)]  # all fit the slots at once: one pass
    assert slot_passes([100] * 80, 64) == [slice(0, 80)]
    groups = prefill_groups(seed_safe_like[:64])
    assert [(g.start, g.stop) for g in groups][:3] == [(0, 4), (4, 8), (8, 12)]
    for g in groups:  # padding to each group's first stays within the bound
        lengths = seed_safe_like[g]
        assert len(lengths) <= 16 and lengths[0] * len(lengths) <= max(1.25 * sum(lengths), 1024)
    assert [(g.start, g.stop) for g in prefill_groups([60] * 40)] == [(0, 16), (16, 32), (32, 40)]
