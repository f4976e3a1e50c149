"""The hf backend on the oldest transformers pyproject allows (5.19, which is also what the vllm
extra resolves to: vLLM 0.32 needs <5.20), where the forward's cache keyword is still
`past_key_values`: the loop, the slot decoder and generate_batch must still equal one-prompt generate.

It needs that transformers beside the installed one, e.g.
    pip install --no-deps --target /tmp/transformers-5.19 transformers==5.19.0
    SAFTOOL_OLD_TRANSFORMERS=/tmp/transformers-5.19 pytest tests/runtimes/test_transformers_bound.py
and skips without it (the tests download nothing).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OLD = os.environ.get("SAFTOOL_OLD_TRANSFORMERS")

CHECK = """
import json, sys, torch
from pathlib import Path
import transformers
from saftool.records import GenerationConfig
from saftool.runtimes import Prompt
from saftool.runtimes.hf import HFRuntime, _cache_keyword
from tests.runtimes.archfix import build_model

folder = build_model(sys.argv[2], Path(sys.argv[1]) / sys.argv[2])
prompts = [Prompt("Say hi."), Prompt("What is 2 plus 3?"), Prompt("Reverse the word apple."), Prompt("Name a colour.")]
out = {"version": transformers.__version__, "answers": {}}
for decoder in sys.argv[3:]:
    runtime = HFRuntime(str(folder), HFRuntime.Options(batch_size=2, device="cpu", decoder=decoder))
    got = dict(runtime.generate(prompts, GenerationConfig(max_new_tokens=10, template="chat")))
    out["answers"][decoder] = [[got[i].text, got[i].completion_tokens] for i in range(len(prompts))]
out["keyword"] = _cache_keyword(runtime.model)
reference = []
for p in prompts:
    text = runtime.tokenizer.apply_chat_template([{"role": "user", "content": p.instruction}], add_generation_prompt=True, tokenize=False)
    ids = runtime.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    new = runtime.model.generate(ids, max_new_tokens=10, do_sample=False)[0, ids.shape[1]:].tolist()
    stops = set(runtime.stops)
    answer = new[:-1] if new and new[-1] in stops else new
    reference.append([runtime.tokenizer.decode(answer, skip_special_tokens=True).strip(), len(new)])
out["reference"] = reference
print(json.dumps(out))
"""


def test_the_installed_transformers_takes_cache():
    """transformers >= 5.24 names the keyword `cache`; the runtime asks the forward, not the version."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from saftool.runtimes.hf import _cache_keyword

    model = LlamaForCausalLM(
        LlamaConfig(
            hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, vocab_size=32
        )
    )
    assert _cache_keyword(model) == "cache"


@pytest.mark.skipif(
    not OLD, reason="set SAFTOOL_OLD_TRANSFORMERS to a pip --target install of transformers==5.19.0"
)
@pytest.mark.parametrize(("name", "decoders"), [("llama3", ["slots", "loop", "paged"]), ("qwen2", ["loop"])])
def test_the_oldest_allowed_transformers_answers_as_generate(tmp_path, name, decoders):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([OLD, str(ROOT)])}
    proc = subprocess.run(
        [sys.executable, "-c", CHECK, str(tmp_path), name, *decoders],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["version"] < "5.24" and out["keyword"] == "past_key_values"
    for decoder in decoders:
        assert out["answers"][decoder] == out["reference"], decoder
