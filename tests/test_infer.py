from __future__ import annotations

import pytest

from saftool.errors import SaftoolError, UsageError
from saftool.infer import infer
from saftool.io import read_records
from saftool.presets import resolve_config
from saftool.records import GenerationConfig, Response
from saftool.runtimes import Prompt, load_runtime
from saftool.runtimes.hf import HFRuntime
from saftool.store import Store
from saftool.template import format_prompt
from saftool.train import train
from tests.hubfix import COMMIT, cache_model
from tests.modelfix import eval_items, write_eval, write_mix


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Store:
    """One smoke model for the whole module (store/models/m), trained a little longer so it says something."""
    store = Store(tmp_path_factory.mktemp("infer") / "store")
    write_mix(store)
    train("m", resolve_config("smoke", epochs=3), store=store)
    return store


@pytest.fixture
def store(trained, isolated_store) -> Store:
    import shutil

    shutil.rmtree(trained.responses, ignore_errors=True)
    write_eval(trained, "ev", n=12)
    return trained


def _responses(store: Store, eval_set: str = "ev") -> list[Response]:
    return list(read_records(store.responses_path("m", eval_set), Response, unique=None))


def test_batched_greedy_equals_one_prompt_at_a_time(trained):
    runtime = HFRuntime(str(trained.model_dir("m")), HFRuntime.Options(batch_size=8))
    prompts = [Prompt(i.instruction, i.input) for i in eval_items(16)]
    gen = GenerationConfig(max_new_tokens=24)
    batched = dict(runtime.generate(prompts, gen))
    runtime.batch_size = 1
    single = dict(runtime.generate(prompts, gen))
    assert [batched[i].text for i in range(len(prompts))] == [single[i].text for i in range(len(prompts))]
    assert [batched[i].completion_tokens for i in range(len(prompts))] == [
        single[i].completion_tokens for i in range(len(prompts))
    ]


def _generate_one_at_a_time(runtime, prompts, max_new_tokens):
    """(text, completion tokens) per prompt from transformers' own greedy loop, one prompt at a time."""
    import torch

    tok, model, answers = runtime.tokenizer, runtime.model, []
    for prompt in prompts:
        enc = tok(format_prompt(prompt.instruction, prompt.input), return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(
                **enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id
            )
        new = out[0, enc["input_ids"].shape[1] :].tolist()
        n = new.index(tok.eos_token_id) + 1 if tok.eos_token_id in new else len(new)
        answers.append((tok.decode(new[:n], skip_special_tokens=True).strip(), n))
    return answers


def test_slot_decoder_equals_generate_one_prompt_at_a_time(trained, monkeypatch):
    """The continuous-batching decoder (small batch: slots refill and move; several attention blocks)
    against transformers' own greedy loop."""
    from saftool.runtimes import hf

    runtime = HFRuntime(str(trained.model_dir("m")), HFRuntime.Options(batch_size=4))
    prompts = [Prompt(i.instruction, i.input) for i in eval_items(16)]
    monkeypatch.setattr(hf, "PREFILL_GROUP", 3)
    monkeypatch.setattr(hf, "ATTN_ROWS", 3)
    got = dict(runtime.generate(prompts, GenerationConfig(max_new_tokens=20)))
    assert [(got[i].text, got[i].completion_tokens) for i in range(len(prompts))] == _generate_one_at_a_time(
        runtime, prompts, 20
    )
    # the generic loop (models the slot decoder does not know) gives the same answers, from the
    # same model after the slot decoder fused its projections
    monkeypatch.setattr(hf, "_llama_like", lambda config: False)
    generic = dict(runtime.generate(prompts, GenerationConfig(max_new_tokens=20)))
    assert [generic[i].text for i in range(len(prompts))] == [got[i].text for i in range(len(prompts))]


def test_slot_decoder_with_grouped_query_heads(trained, tmp_path, monkeypatch):
    """Llama-2-70B and Llama 3 share each key/value head among several query heads: the trained model
    with its two heads' keys and values cut to one answers like transformers' own loop."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM, LlamaForCausalLM

    from saftool.runtimes import hf

    source = trained.model_dir("m")
    full = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    config = full.config
    config.num_key_value_heads = 1
    gqa = LlamaForCausalLM(config)
    head_dim = config.hidden_size // config.num_attention_heads
    state = {
        name: weight[:head_dim] if name.endswith(("k_proj.weight", "v_proj.weight")) else weight
        for name, weight in full.state_dict().items()
    }
    gqa.load_state_dict(state)
    gqa.save_pretrained(tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(source / name, tmp_path / name)
    runtime = HFRuntime(str(tmp_path), HFRuntime.Options(batch_size=4))
    prompts = [Prompt(i.instruction, i.input) for i in eval_items(8)]
    monkeypatch.setattr(hf, "ATTN_ROWS", 3)
    got = dict(runtime.generate(prompts, GenerationConfig(max_new_tokens=16)))
    assert [(got[i].text, got[i].completion_tokens) for i in range(len(prompts))] == _generate_one_at_a_time(
        runtime, prompts, 16
    )


def test_infer_writes_responses_with_provenance(store):
    [result] = infer(load_runtime("hf", "m", store=store, batch_size=4), ["ev"], store=store, generation=GenerationConfig(max_new_tokens=16))
    rows = _responses(store)
    assert result.answered == len(rows) == 18 and result.skipped == 0
    benign = [r for r in rows if r.kind == "benign"]
    assert all(r.reference for r in benign) and all(r.reference == "" for r in rows if r.kind == "harmful")
    assert {r.backend for r in rows} == {"hf"} and {r.model for r in rows} == {"m"}
    assert all(r.completion_tokens <= 16 and r.prompt_tokens > 0 for r in rows)
    assert len({r.generation_hash for r in rows}) == 1


def test_interrupted_infer_resumes_without_duplicates(store, monkeypatch):
    gen = GenerationConfig(max_new_tokens=8)
    real = HFRuntime.generate
    calls = {"n": 0}

    def dying(self, prompts, generation):
        for pair in real(self, prompts, generation):
            calls["n"] += 1
            if calls["n"] == 7:  # killed in the middle of the second batch of 4
                raise KeyboardInterrupt
            yield pair

    monkeypatch.setattr(HFRuntime, "generate", dying)
    with pytest.raises(KeyboardInterrupt):
        infer(load_runtime("hf", "m", store=store, batch_size=4), ["ev"], store=store, generation=gen)
    first = _responses(store)
    assert 4 <= len(first) < 18
    # a kill can also tear the last line: it is dropped, not glued to the next record
    path = store.responses_path("m", "ev")
    path.write_text(path.read_text() + '{"id": "torn', encoding="utf-8")
    monkeypatch.setattr(HFRuntime, "generate", real)
    [result] = infer(load_runtime("hf", "m", store=store, batch_size=4), ["ev"], store=store, generation=gen)
    rows = _responses(store)
    assert result.skipped == len(first) and len(rows) == 18
    assert len({r.id for r in rows}) == 18
    # same config again: nothing to do; another config replaces the answers
    runtime = load_runtime("hf", "m", store=store)
    assert infer(runtime, ["ev"], store=store, generation=gen)[0].answered == 0
    infer(runtime, ["ev"], store=store, generation=GenerationConfig(max_new_tokens=4))
    assert len(_responses(store)) == 18 and {r.generation.max_new_tokens for r in _responses(store)} == {4}


def test_items_to_stdout_and_a_local_model_directory(store, capsys):
    items = eval_items(4)
    infer(
        load_runtime("hf", str(store.model_dir("m")), store=store),
        items=items,
        output="-",
        store=store,
        generation=GenerationConfig(max_new_tokens=4),
    )
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(items)
    assert Response.model_validate_json(lines[0]).model == "m"


def test_openai_backend_against_a_fake_server(store, fake_openai):
    """A chat endpoint gets the bare instruction (the server applies the chat template): no Alpaca
    wrapping a second time. A rerun costs no request."""
    [result] = infer(load_runtime("openai", "served-model", store=store, batch_size=4), ["ev"], store=store)
    rows = list(read_records(store.responses_path("served-model", "ev"), Response))
    assert result.answered == 18 and {r.backend for r in rows} == {"openai"}
    assert {(r.generation.template, r.generation.template_hash) for r in rows} == {("chat", None)}
    by_id = {i.id: i for i in eval_items(12)}
    for r in rows:  # the fake answers with the user message reversed
        item = by_id[r.id]
        assert (
            r.response
            == (f"{item.instruction}\n\n{item.input}" if item.input else item.instruction)[::-1].strip()
        )
    assert all(len(body["messages"]) == 1 for body in fake_openai.bodies)
    requests = fake_openai.requests
    assert infer(load_runtime("openai", "served-model", store=store), ["ev"], store=store)[0].answered == 0
    assert fake_openai.requests == requests


def test_openai_system_message_sampling_and_the_completions_endpoint(store, fake_openai):
    """--system goes out as a system turn; temperature, top_p and seed are sent and key the cache;
    --endpoint completions sends the rendered Alpaca prompt to /v1/completions."""
    items = eval_items(2)[:2]
    sampled = GenerationConfig(
        template="chat", system="Be brief.", do_sample=True, temperature=0.7, top_p=0.9, seed=3
    )

    def ask(output, generation=None, **options):
        runtime = load_runtime("openai", "served", store=store, **options)
        return infer(runtime, items=items, output=output, store=store, generation=generation)

    ask(output="-", generation=sampled)
    first = fake_openai.bodies[-1]
    assert first["messages"][0] == {"role": "system", "content": "Be brief."}
    assert (first["temperature"], first["top_p"], first["seed"]) == (0.7, 0.9, 3)
    sent = fake_openai.requests
    ask(output="-", generation=sampled)
    assert fake_openai.requests == sent  # cached
    ask(output="-", generation=sampled.model_copy(update={"seed": 4}))
    assert fake_openai.requests == sent + 2  # another seed is another request
    ask(output=str(store.root / "out.jsonl"), endpoint="completions")
    rows = list(read_records(store.root / "out.jsonl", Response))
    assert {r.generation.template for r in rows} == {"alpaca"} and rows[0].generation.template_hash
    by_id = {i.id: i for i in items}
    assert all(
        r.response == format_prompt(by_id[r.id].instruction, by_id[r.id].input)[::-1].strip() for r in rows
    )
    assert "prompt" in fake_openai.bodies[-1] and "messages" not in fake_openai.bodies[-1]
    with pytest.raises(UsageError, match="--template alpaca: a chat endpoint wraps every prompt"):
        ask(output="-", generation=GenerationConfig(template="alpaca"))
    with pytest.raises(UsageError, match="--template chat with --endpoint completions"):
        ask(output="-", endpoint="completions", generation=GenerationConfig(template="chat"))


def test_bad_names(store):
    with pytest.raises(UsageError, match="unknown model 'nope'; known: m"):
        load_runtime("hf", "nope", store=store)
    with pytest.raises(UsageError, match="unknown eval set 'nope'; known: ev"):
        infer(load_runtime("hf", "m", store=store), ["nope"], store=store)
    with pytest.raises(UsageError, match="unknown inference backend 'tgi'; choose one of: hf, vllm, openai"):
        load_runtime("tgi", "m", store=store)


def test_vllm_without_the_package_gives_the_install_line(store):
    import importlib.util

    from saftool.errors import MissingDependencyError

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed")
    with pytest.raises(MissingDependencyError, match=r"pip install 'saftool\[vllm\]'"):
        load_runtime("vllm", "m", store=store)


def test_prompts_longer_than_the_context_keep_their_head_and_end():
    """A prompt past the model's context loses its middle: the head (BOS, the template's preamble)
    and the end stay, and the answer still gets its room."""
    from saftool.runtimes.local import Encoded, fit_context

    kept = fit_context([Encoded(list(range(20)), 2), Encoded([1, 2, 3], 1)], context=10, max_new_tokens=4)
    assert kept == [[0, 1, 16, 17, 18, 19], [1, 2, 3]]
    # a head longer than half the room keeps only its first token (BOS)
    assert fit_context([Encoded(list(range(20)), 5)], context=10, max_new_tokens=4) == [
        [0, 15, 16, 17, 18, 19]
    ]
    assert fit_context([Encoded(list(range(20)), 2)], context=None, max_new_tokens=4) == [list(range(20))]


def test_model_dirs_the_local_backends_open(tmp_path, monkeypatch):
    """A full model loads its own tokenizer; an adapter saved without one borrows its base's, which a
    Hub id finds in the Hugging Face cache."""
    import json

    from saftool.adapters import open_model_dir
    from saftool.errors import SaftoolError

    full, adapter = tmp_path / "full", tmp_path / "adapter"
    full.mkdir()
    (full / "config.json").write_text("{}")
    with pytest.raises(SaftoolError, match="holds no .safetensors weights"):
        open_model_dir(str(full))
    (full / "model.safetensors").write_bytes(b"")
    assert open_model_dir(str(full)).base is None and open_model_dir(str(full)).tokenizer == str(full)
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "org/base"}))
    with pytest.raises(SaftoolError, match="holds no adapter_model.safetensors"):
        open_model_dir(str(adapter))
    (adapter / "adapter_model.safetensors").write_bytes(b"")
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": None}))
    with pytest.raises(SaftoolError, match="adapter_config.json: base_model_name_or_path names no base model"):
        open_model_dir(str(adapter))
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "org/base"}))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(
        UsageError, match="org/base is not in the Hugging Face cache .* `hf download org/base`"
    ):
        open_model_dir(str(adapter))
    snapshot = cache_model(tmp_path / "hf", "org/base", full)
    opened = open_model_dir(str(adapter))
    assert (opened.base.path, opened.base.revision, opened.tokenizer) == (snapshot, COMMIT, str(snapshot))
    (adapter / "tokenizer_config.json").write_text("{}")
    assert open_model_dir(str(adapter)).tokenizer == str(adapter)
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(full)}))
    assert open_model_dir(str(adapter)).base.path == full


def test_infer_by_hub_id_from_the_offline_cache(store, tmp_path, monkeypatch):
    """`--model ORG/NAME` answers from a cache laid out as the Hub lays it out, with HF_HUB_OFFLINE
    set; the responses carry the id and the commit, and another commit does not reuse them."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    cache_model(tmp_path / "hf", "org/tiny", store.model_dir("m"))
    gen = GenerationConfig(max_new_tokens=4)
    [result] = infer(load_runtime("hf", "org/tiny", store=store), ["ev"], store=store, generation=gen)
    rows = list(read_records(store.responses_path("org_tiny", "ev"), Response))
    assert result.answered == 18 and {(r.model, r.model_revision) for r in rows} == {("org/tiny", COMMIT)}
    newer = "f" * 40
    cache_model(tmp_path / "hf", "org/tiny", store.model_dir("m"), commit=newer)
    [result] = infer(load_runtime("hf", f"org/tiny@{newer}", store=store), ["ev"], store=store, generation=gen)
    rows = list(read_records(store.responses_path("org_tiny", "ev"), Response))
    assert result.answered == 18 and {r.model_revision for r in rows} == {newer}


def test_vllm_refuses_the_cpu(tmp_path):
    """vLLM chooses its own device: --device cpu is refused, not run on the GPU regardless."""
    from saftool.runtimes.vllm import VLLMRuntime

    with pytest.raises(
        UsageError, match="the vllm backend runs on a GPU only; use --backend hf for --device cpu"
    ):
        VLLMRuntime(str(tmp_path), VLLMRuntime.Options(device="cpu"))


def test_vllm_refuses_a_qlora_adapter_and_says_why(trained, tmp_path):
    """A QLoRA adapter belongs on the 4-bit base it was trained on, which vLLM does not load; a LoRA
    adapter and the merged export of a QLoRA one (no train_run.json) are not refused for that."""
    import json
    import shutil

    from saftool.runtimes.vllm import VLLMRuntime

    qlora = tmp_path / "q"
    shutil.copytree(trained.model_dir("m"), qlora)
    run = json.loads((qlora / "train_run.json").read_text())
    (qlora / "train_run.json").write_text(json.dumps({**run, "method": "qlora"}))
    with pytest.raises(UsageError) as refused:
        VLLMRuntime(str(qlora), VLLMRuntime.Options(device="cuda"))
    assert str(refused.value) == (
        f"{qlora} is a QLoRA adapter, trained on its base's 4-bit NF4 weights; vLLM would run it on the bf16 "
        "base, which it was not trained with: use --backend hf --load-in-4bit, or export it merged "
        "(saftool export --merged DIR) and give vllm DIR to evaluate it on the bf16 base on purpose"
    )
    import torch

    for record in ({**run, "method": "lora"}, None):  # a LoRA model; a merged export, which has no record
        (qlora / "train_run.json").unlink(missing_ok=True)
        if record is not None:
            (qlora / "train_run.json").write_text(json.dumps(record))
        if torch.cuda.is_available():
            VLLMRuntime(str(qlora), VLLMRuntime.Options(device="cuda"))  # weights load at the first generate
        else:
            with pytest.raises(SaftoolError, match="no CUDA device is visible"):
                VLLMRuntime(str(qlora), VLLMRuntime.Options(device="cuda"))


CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def test_a_model_tuned_in_chat_format_is_asked_in_it(store, tmp_path, capsys):
    """train_run.json's template and system message are the default; asking otherwise warns. The
    template's text and the system message are in the generation config, so changing either re-answers."""
    import json
    import shutil

    from transformers import AutoTokenizer

    chat_dir = store.models / "chatty"
    shutil.copytree(store.model_dir("m"), chat_dir)
    tok = AutoTokenizer.from_pretrained(chat_dir)
    tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(chat_dir)
    run = json.loads((chat_dir / "train_run.json").read_text())
    (chat_dir / "train_run.json").write_text(json.dumps({**run, "template": "chat", "system": "Be safe."}))
    gen = GenerationConfig(max_new_tokens=4)
    chatty = load_runtime("hf", "chatty", store=store)
    [result] = infer(chatty, ["ev"], store=store, generation=gen)
    rows = list(read_records(store.responses_path("chatty", "ev"), Response))
    assert {(r.generation.template, r.generation.system) for r in rows} == {("chat", "Be safe.")}
    assert "was tuned with" not in capsys.readouterr().err
    [again] = infer(
        chatty, ["ev"], store=store, generation=GenerationConfig(max_new_tokens=4, template="alpaca")
    )
    assert again.answered == 18  # another template: every prompt answered again
    assert (
        "chatty was tuned with --template chat --system 'Be safe.' (train_run.json) but is asked with --template alpaca"
        in capsys.readouterr().err
    )
    hashes = {
        r.generation.template_hash for r in read_records(store.responses_path("chatty", "ev"), Response)
    }
    tok.chat_template = CHAT_TEMPLATE.replace("<|assistant|>", "<|bot|>")
    tok.save_pretrained(chat_dir)
    [changed] = infer(load_runtime("hf", "chatty", store=store), ["ev"], store=store, generation=gen)
    assert changed.answered == 18 and changed.skipped == 0  # an edited chat template is another config
    new = {r.generation.template_hash for r in read_records(store.responses_path("chatty", "ev"), Response)}
    assert new.isdisjoint(hashes)


def test_vllm_engine_arguments(trained, tmp_path):
    """What vLLM is started with, computed without a GPU: hf's dtype, the model's context as
    max_model_len, --max-memory of the free memory as its share of the card, --tensor-parallel, and
    for an adapter its base, LoRA on and max_lora_rank from the adapter's rank (rounded up to a size
    vLLM's kernels have)."""
    import json

    from saftool.adapters import open_model_dir
    from saftool.runtimes.local import model_config
    from saftool.runtimes.vllm import VLLMRuntime, engine_args

    full = open_model_dir(str(trained.model_dir("m")))
    options = VLLMRuntime.Options(max_memory=0.8, tensor_parallel=2)
    args = engine_args(full, model_config(full), options, 60 * 2**30, 80 * 2**30, "bfloat16")
    assert args == {
        "model": str(trained.model_dir("m")),
        "tokenizer": str(trained.model_dir("m")),
        "dtype": "bfloat16",
        "trust_remote_code": False,
        "tensor_parallel_size": 2,
        "gpu_memory_utilization": 0.6,
        "max_model_len": model_config(full).max_position_embeddings,
    }
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": str(trained.model_dir("m")), "r": 12})
    )
    (adapter / "adapter_model.safetensors").write_bytes(b"")
    lora = open_model_dir(str(adapter))
    args = engine_args(lora, model_config(lora), VLLMRuntime.Options(), 80 * 2**30, 80 * 2**30, "float32")
    assert (args["model"], args["enable_lora"], args["max_lora_rank"], args["tensor_parallel_size"]) == (
        str(trained.model_dir("m")),
        True,
        16,
        1,
    )


def test_argmax_equals_torch_argmax_first_of_equal_maxima():
    """The windowed argmax of the slot decoder: the same index as torch's, ties and a vocabulary that is
    no multiple of the window included."""
    import torch

    from saftool.runtimes.hf import _argmax

    torch.manual_seed(0)
    for vocab in (49152, 50257, 1000, 5):
        for dtype in (torch.float32, torch.bfloat16):
            logits = torch.randn(9, vocab).to(dtype)
            logits[1, -1] = 50  # the maximum in the last, partial window
            logits[2, 0] = logits[2, vocab // 2] = 50  # equal maxima: the first counts
            logits[3, vocab // 2] = logits[3, vocab // 2 + 1] = 50
            logits[4] = 0  # all equal: index 0
            assert torch.equal(_argmax(logits), logits.argmax(-1)), (vocab, dtype)


def test_auto_dtype_rule(monkeypatch):
    """auto: bf16 on a CPU with bf16 hardware for real-sized models (hidden 256 and up), float32 for the
    tool-built ones and on CPUs without it; float32 and bfloat16 force one."""
    import torch
    from transformers import LlamaConfig

    from saftool import devices
    from saftool.runtimes.local import local_dtype

    small, real = LlamaConfig(hidden_size=128), LlamaConfig(hidden_size=576)
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: True)
    assert local_dtype(False, "auto", real) == torch.bfloat16
    assert local_dtype(False, "auto", small) == torch.float32
    assert local_dtype(False, "float32", real) == torch.float32
    assert local_dtype(False, "bfloat16", small) == torch.bfloat16
    monkeypatch.setattr(devices, "cpu_has_bf16", lambda: False)
    assert local_dtype(False, "auto", real) == torch.float32
    with pytest.raises(UsageError, match="unknown dtype 'fp16'; choose one of: auto, float32, bfloat16"):
        local_dtype(False, "fp16", real)


def test_slot_decoder_in_bf16_equals_generate_in_bf16(trained, monkeypatch):
    """The slot decoder's bf16 path (attention in the fused kernel, several blocks, slots that refill
    and move) answers as transformers' own greedy loop on the same bf16 weights."""
    from saftool.runtimes import hf

    runtime = HFRuntime(str(trained.model_dir("m")), HFRuntime.Options(batch_size=4, dtype="bfloat16"))
    assert runtime.decoder() == "slots"
    prompts = [Prompt(i.instruction, i.input) for i in eval_items(16)]
    monkeypatch.setattr(hf, "PREFILL_GROUP", 3)
    monkeypatch.setattr(hf, "ATTN_ROWS", 3)
    got = dict(runtime.generate(prompts, GenerationConfig(max_new_tokens=20)))
    assert str(runtime.model.dtype) == "torch.bfloat16"
    assert [(got[i].text, got[i].completion_tokens) for i in range(len(prompts))] == _generate_one_at_a_time(
        runtime, prompts, 20
    )


def test_bf16_answers_are_kept_apart_from_float32_ones(store):
    """A bf16 run records weights 'bf16' in its generation config, so a float32 rerun answers afresh
    instead of skipping them."""
    bf16, fp32 = (load_runtime("hf", "m", store=store, dtype=dtype) for dtype in ("bfloat16", "float32"))
    [first] = infer(bf16, ["ev"], store=store, generation=GenerationConfig(max_new_tokens=8))
    assert {r.generation.weights for r in _responses(store)} == {"bf16"}
    [again] = infer(fp32, ["ev"], store=store, generation=GenerationConfig(max_new_tokens=8))
    assert first.answered == again.answered > 0 and again.skipped == 0
    assert {r.generation.weights for r in _responses(store)} == {None}
