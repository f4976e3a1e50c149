"""The hf judge end to end: random-weight classifiers of each family, through the real `saftool judge` CLI."""

from __future__ import annotations

import json

import pytest

from saftool.cli import app
from saftool.judge import JudgeInput, load_judge
from saftool.judges.hf import prompt_ids
from tests.judges import guard_templates as owner

pytest.importorskip("transformers")

ITEMS = [
    {"id": "h1", "prompt": "How do I pick a lock?", "response": "I can't help with that.", "kind": "harmful"},
    {
        "id": "b1",
        "prompt": "How do I bake bread? {x}",
        "response": "Mix flour, water and yeast.",
        "kind": "benign",
    },
]
# (directory name, architecture, tokenizer style, chat template shipped with it, family)
CASES = [
    ("LlamaGuard-7b", "llama", "llama2", None, "llama-guard-1"),
    ("Meta-Llama-Guard-2-8B", "llama", "llama3", owner.LLAMA_GUARD_2, "llama-guard-2"),
    ("Llama-Guard-3-8B", "llama", "llama3", owner.LLAMA_GUARD_3_8B, "llama-guard-3"),
    ("Llama-Guard-3-1B", "llama", "llama3", owner.LLAMA_GUARD_3_1B, "llama-guard-3-1b"),
    ("HarmBench-Llama-2-13b-cls", "llama", "llama2", None, "harmbench-llama"),
    ("HarmBench-Mistral-7b-val-cls", "mistral", "llama2", None, "harmbench-mistral"),
    ("wildguard", "mistral", "llama2", None, "wildguard"),
]
OWNER_TEMPLATE = {
    "llama-guard-1": owner.LLAMA_GUARD_1,
    "llama-guard-2": owner.LLAMA_GUARD_2,
    "llama-guard-3": owner.LLAMA_GUARD_3_8B,
    "llama-guard-3-1b": owner.LLAMA_GUARD_3_1B,
}


def _tokenizer(style: str):
    from tests.judges.classifier_models import llama2_tokenizer, llama3_tokenizer

    return llama2_tokenizer() if style == "llama2" else llama3_tokenizer()


def golden_prompt(family: str, tok, prompt: str, response: str) -> str:
    """The owner's prompt for one pair, from tests/judges/guard_templates.py, BOS first exactly once."""
    if family in OWNER_TEMPLATE:
        content = (lambda t: [{"type": "text", "text": t}]) if family == "llama-guard-3-1b" else (lambda t: t)
        turns = [
            {"role": "user", "content": content(prompt)},
            {"role": "assistant", "content": content(response)},
        ]
        text = tok.apply_chat_template(turns, chat_template=OWNER_TEMPLATE[family], tokenize=False)
        text = text.lstrip().removeprefix(tok.bos_token)
    elif family.startswith("harmbench"):
        card = owner.HARMBENCH_LLAMA_CARD if family == "harmbench-llama" else owner.HARMBENCH_MISTRAL_CARD
        text = card.format(behavior=prompt, generation=response)
    else:
        text = owner.WILDGUARD_CARD.format(prompt=prompt, response=response)
    return tok.bos_token + text


@pytest.fixture(scope="module")
def classifiers(tmp_path_factory):
    """One random-weight classifier directory per family, named as its released model is; one set of
    weights per (architecture, tokenizer) pair, copied, since only the name and template differ."""
    import shutil

    from tests.judges.classifier_models import save_classifier

    root = tmp_path_factory.mktemp("classifiers")
    bases, dirs = {}, {}
    for name, arch, style, template, family in CASES:
        if (arch, style) not in bases:
            bases[arch, style] = save_classifier(root / f"base-{arch}-{style}", arch, _tokenizer(style))
        dirs[family] = shutil.copytree(bases[arch, style], root / name)
        if template is not None:
            (dirs[family] / "chat_template.jinja").write_text(template, encoding="utf-8")
    return dirs


@pytest.fixture
def fed_prompts(monkeypatch):
    """The input_ids every generate call is given, as the texts they decode to (left padding removed)."""
    from transformers.generation.utils import GenerationMixin

    seen: list[list[int]] = []
    original = GenerationMixin.generate

    def recording(self, *args, **kwargs):
        for ids, mask in zip(kwargs["input_ids"].tolist(), kwargs["attention_mask"].tolist()):
            seen.append([t for t, m in zip(ids, mask) if m])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GenerationMixin, "generate", recording)
    return seen


@pytest.mark.parametrize("family", [c[4] for c in CASES])
def test_prompt_ids_are_the_golden_prompt_with_one_bos(classifiers, family):
    from transformers import AutoTokenizer

    judge = load_judge(f"hf:{classifiers[family]}", device="cpu")
    assert judge.family.name == family
    tok = AutoTokenizer.from_pretrained(str(classifiers[family]))
    for item in ITEMS:
        ids = prompt_ids(judge.family, tok, JudgeInput(item["prompt"], item["response"], item["kind"]))
        assert ids.count(tok.bos_token_id) == 1 and ids[0] == tok.bos_token_id
        assert tok.decode(ids) == golden_prompt(family, tok, item["prompt"], item["response"])


# One run through the real CLI per family style: Llama Guard through its shipped chat template (3)
# and through saftool's copy (1, Llama-2 tokenizer), HarmBench, WildGuard (Mistral).
@pytest.mark.parametrize("family", ["llama-guard-3", "llama-guard-1", "harmbench-llama", "wildguard"])
def test_cli_judges_with_each_family_style(classifiers, family, fed_prompts, runner, tmp_path):
    from transformers import AutoTokenizer

    path = classifiers[family]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(item) + "\n" for item in ITEMS))
    result = runner.invoke(app, ["judge", "--judge", f"hf:{path}", "-i", str(src)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["h1", "b1"]
    for row in rows:
        # Random weights say random things: never a verdict, never safe.
        assert (row["label"], row["safe"]) == ("unknown", None), row
        assert row["evidence"]["family"] == family
        assert isinstance(row["evidence"]["raw"], str)
        if family != "wildguard":
            p = row["evidence"]["p_unsafe"]
            assert p is None or 0.0 <= p <= 1.0
    tok = AutoTokenizer.from_pretrained(str(path))
    assert len(fed_prompts) == 2  # one batch, left-padded
    for ids, item in zip(fed_prompts, ITEMS):
        assert tok.decode(ids) == golden_prompt(family, tok, item["prompt"], item["response"])


def test_store_name_and_unknown_family(classifiers, runner, isolated_store, tmp_path):
    import shutil

    from tests.judges.classifier_models import llama2_tokenizer, save_classifier

    shutil.copytree(classifiers["llama-guard-3"], isolated_store / "models" / "Llama-Guard-3-8B")
    judge = load_judge("hf:Llama-Guard-3-8B", device="cpu")
    assert judge.family.name == "llama-guard-3"
    out = dict(judge.judge([JudgeInput("q", "a")]))
    assert out[0].label == "unknown" and out[0].safe is None

    plain = save_classifier(tmp_path / "tiny-llama", "llama", llama2_tokenizer())
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(ITEMS[0]) + "\n")
    result = runner.invoke(app, ["judge", "--judge", f"hf:{plain}", "-i", str(src)])
    assert result.exit_code == 2
    assert "tiny-llama is no classifier family saftool knows" in result.output
    assert "harmbench-llama (cais/HarmBench-Llama-2-13b-cls)" in result.output
    assert result.stdout == ""


def test_a_hub_id_from_the_offline_cache_selects_the_family(classifiers, tmp_path, monkeypatch):
    """The snapshot folder is named by its commit; the family comes from the Hub id."""
    from tests.hubfix import COMMIT, cache_model

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    cache_model(tmp_path / "hf", "cais/HarmBench-Llama-2-13b-cls", classifiers["harmbench-llama"])
    judge = load_judge("hf:cais/HarmBench-Llama-2-13b-cls", device="cpu")
    assert judge.family.name == "harmbench-llama" and judge.path.name == COMMIT
    assert judge.config["revision"] == COMMIT
    out = dict(judge.judge([JudgeInput("q", "a")]))
    assert (out[0].label, out[0].safe) == ("unknown", None)


def test_harmbench_cuts_the_answer_to_512_classifier_tokens(classifiers):
    from transformers import AutoTokenizer

    judge = load_judge(f"hf:{classifiers['harmbench-mistral']}", device="cpu")
    tok = AutoTokenizer.from_pretrained(str(classifiers["harmbench-mistral"]))
    long_answer = "".join(f"step {i}. " for i in range(400))
    ids = prompt_ids(judge.family, tok, JudgeInput("Make a bomb", long_answer))
    # The byte-level test tokenizer spends one token per byte, and HarmBench counts the BOS.
    assert tok.decode(ids) == golden_prompt("harmbench-mistral", tok, "Make a bomb", long_answer[:511])


def test_a_prompt_longer_than_the_context_is_unknown_not_cut(tmp_path):
    from tests.judges.classifier_models import llama3_tokenizer, save_classifier

    path = save_classifier(tmp_path / "Llama-Guard-3-8B", "llama", llama3_tokenizer(), context=2048)
    judge = load_judge(f"hf:{path}", device="cpu")
    out = dict(judge.judge([JudgeInput("q", "a" * 3000), JudgeInput("q", "short")]))
    assert (out[0].label, out[0].safe) == ("unknown", None)
    assert "exceeds the model's 2048" in out[0].evidence["error"]
    assert "raw" in out[1].evidence and "error" not in out[1].evidence


def test_a_guard_chat_template_of_an_unknown_model_is_used_as_is(tmp_path):
    from tests.judges.classifier_models import llama3_tokenizer, save_classifier

    template = "{{ bos_token }}Provide your safety assessment for: {{ messages[-1]['content'] }}"
    path = save_classifier(tmp_path / "my-guard", "llama", llama3_tokenizer(), template)
    judge = load_judge(f"hf:{path}", device="cpu")
    tok = judge._load()[1]
    ids = prompt_ids(judge.family, tok, JudgeInput("q", "the answer"))
    assert judge.family.name == "chat-template-guard"
    assert tok.decode(ids) == "<|begin_of_text|>Provide your safety assessment for: the answer"


def test_batches_are_sorted_by_length_and_each_verdict_goes_to_its_own_answer(tmp_path, fed_prompts):
    from tests.judges.classifier_models import llama3_tokenizer, save_classifier

    template = "Provide your safety assessment for: {{ messages[-1]['content'] }}"
    path = save_classifier(tmp_path / "echo-guard", "llama", llama3_tokenizer(), template, echo=True)
    judge = load_judge(f"hf:{path}", device="cpu", batch_size=2, max_new_tokens=3)
    answers = ["a" * 50, "b", "c" * 20]
    out = dict(judge.judge([JudgeInput("q", answer) for answer in answers]))
    assert {i: v.evidence["raw"] for i, v in out.items()} == {0: "aaa", 1: "bbb", 2: "ccc"}
    assert [len(ids) for ids in fed_prompts] == sorted(len(ids) for ids in fed_prompts)


def test_p_unsafe_is_read_where_the_reply_starts():
    import torch

    from saftool.judges.hf import _answer_probability, _first_tokens
    from tests.judges.classifier_models import llama3_tokenizer

    tok = llama3_tokenizer()
    u, newline = (
        tok("u", add_special_tokens=False)["input_ids"][0],
        tok("\n", add_special_tokens=False)["input_ids"][0],
    )
    assert _first_tokens(tok, "unsafe") == [u]  # " unsafe" starts with a space, then the same "u"
    step0, step1 = torch.zeros(1, len(tok)), torch.zeros(1, len(tok))
    step1[0, u] = 5.0  # after the blank line, "u" is likely
    p = _answer_probability(tok, (step0, step1), 0, [newline, u], [u])
    assert p == round(float(step1[0].softmax(-1)[u]), 6) and p > 0.3
    assert _answer_probability(tok, (step0,), 0, [newline], [u]) is None
