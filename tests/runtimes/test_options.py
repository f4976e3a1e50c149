"""Each runtime declares its own options; the registry checks them before anything is built, and
`infer` drives any runtime without knowing its name."""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from saftool import infer as infer_module
from saftool.cli import app
from saftool.errors import UsageError
from saftool.hub import ModelSource
from saftool.io import read_records
from saftool.records import GenerationConfig, Response
from saftool.registry import EngineOptions
from saftool.runtimes import RUNTIMES, BatchOptions, Completion, Prompt, load_runtime
from saftool.store import Store
from saftool.template import template_text
from tests.modelfix import eval_items, write_eval
from tests.optionsfix import probe

# a flag each backend does not take, and the backend whose flag it is
FOREIGN = {
    "hf": (["--tensor-parallel", "2"], "--tensor-parallel is an option of the vllm backend"),
    "vllm": (["--endpoint", "completions"], "--endpoint is an option of the openai backend"),
    "openai": (["--decoder", "slots"], "--decoder is an option of the hf backend"),
}


def _options_models() -> list[tuple[str, type[EngineOptions]]]:
    return [(name, RUNTIMES.load_class(name).Options) for name in RUNTIMES.names()]


def test_every_backend_declares_options_that_forbid_the_unknown():
    assert set(FOREIGN) == set(RUNTIMES.names())
    for name, model in _options_models():
        assert issubclass(model, EngineOptions) and model.model_config["extra"] == "forbid", name
        assert RUNTIMES.load_class(name).name == name  # what responses record as their backend


@pytest.mark.parametrize("backend", sorted(FOREIGN))
def test_the_cli_refuses_a_flag_the_backend_does_not_take(runner, isolated_store, backend):
    """Named: the flag, the backend that takes it, the backend chosen; exit 2 before the model is
    looked at (the model does not exist) and with nothing written."""
    write_eval(Store(isolated_store), "ev", n=2)
    flag, owner = FOREIGN[backend]
    result = runner.invoke(app, ["infer", "--model", "missing", "--eval", "ev", "--backend", backend, *flag])
    assert result.exit_code == 2
    assert result.stderr == f"error: {owner}; the {backend} backend does not take it\n"
    assert not (isolated_store / "responses").exists()


def test_a_misspelt_or_bad_option_in_the_library_is_an_error(isolated_store):
    with pytest.raises(UsageError) as misspelt:
        load_runtime("openai", "served", batch_sise=4)
    assert str(misspelt.value) == (
        "the openai backend does not take --batch-sise (it takes --batch-size, --endpoint)"
    )
    with pytest.raises(UsageError, match="--device is an option of the hf and vllm backends; the openai"):
        load_runtime("openai", "served", device="cpu")
    with pytest.raises(UsageError, match=r"^--batch-size: Input should be a valid integer.* \(the openai backend\)$"):
        load_runtime("openai", "served", batch_size="many")


@pytest.mark.parametrize("backend", sorted(FOREIGN))
def test_every_option_of_every_backend_is_reachable_from_the_cli(runner, isolated_store, monkeypatch, backend):
    """Each field has an `infer` flag spelled after it, with the field's default as its documented
    default, and a value given on the command line arrives in the backend's options."""
    from saftool.cli import infer as cli_infer

    cls = RUNTIMES.load_class(backend)
    monkeypatch.setattr(RUNTIMES, "requires", {})  # checked here without vllm installed
    defaults = {p.name: p.default for p in inspect.signature(cli_infer.infer).parameters.values()}
    seen: list = []

    def recording(self, model, options=None, *, store=None):
        seen.append(options)
        raise UsageError("recorded")

    monkeypatch.setattr(cls, "__init__", recording)
    for field, info in cls.Options.model_fields.items():
        flag = "--" + field.replace("_", "-")
        assert flag in defaults[field].param_decls, (backend, field)
        assert defaults[field].default == info.default, (backend, field)
        word, value = probe(info.annotation)
        words = [flag] if word is None else [flag, word]
        result = runner.invoke(app, ["infer", "--model", "m", "--eval", "ev", "--backend", backend, *words])
        assert result.stderr == "error: recorded\n", result.stderr
        assert getattr(seen[-1], field) == value and seen[-1].model_fields_set == {field}


class EchoRuntime:
    """A backend saftool does not know: it answers each prompt with its instruction, shouted."""

    name = "echo"
    loads_model_dir = False
    default_template = "none"
    weights = "int8"  # as if its weights were quantised: answers must not mix with others'

    class Options(BatchOptions):
        shout: bool = False

    def __init__(self, model: str, options: Options | None = None, *, store=None):
        self.options = options or self.Options()
        self.source = ModelSource(Path(model), model)
        self.batch_size = self.options.batch_size or 2

    def prompt_template(self, generation: GenerationConfig, model: str) -> str:
        return template_text(generation.template)

    def generate(self, prompts: Sequence[Prompt], generation: GenerationConfig) -> Iterator[tuple[int, Completion]]:
        for i, prompt in reversed(list(enumerate(prompts))):  # in any order, as runtimes may answer
            text = prompt.instruction.upper() if self.options.shout else prompt.instruction
            yield i, Completion(text, len(prompt.instruction), len(text))


def test_infer_drives_a_runtime_it_does_not_know(runner, isolated_store, monkeypatch, capsys):
    """Registered here, not in saftool: chosen, checked and built by name from the real CLI, and
    its name and weights land in the responses. `infer` holds no backend's name."""
    monkeypatch.setitem(RUNTIMES.entries, "echo", f"{__name__}:EchoRuntime")
    store = Store(isolated_store)
    write_eval(store, "ev", n=4)
    result = runner.invoke(app, ["infer", "--backend", "echo", "--model", "loud", "--eval", "ev", "--decoder", "loop"])
    assert result.exit_code == 2
    assert result.stderr == "error: --decoder is an option of the hf backend; the echo backend does not take it\n"
    result = runner.invoke(app, ["infer", "--backend", "echo", "--model", "loud", "--eval", "ev", "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    rows = list(read_records(store.responses_path("loud", "ev"), Response))
    assert len(rows) == 6 and "ev: 6 answered" in result.stderr
    assert {(r.backend, r.generation.weights, r.generation.template) for r in rows} == {("echo", "int8", "none")}
    by_id = {item.id: item for item in eval_items(4)}
    assert all(r.response == by_id[r.id].instruction for r in rows)
    # its own option reaches it from the library; answers of other weights or options are kept apart
    loud = load_runtime("echo", "loud", store=store, shout=True)
    [again] = infer_module.infer(loud, items=eval_items(4), items_name="ev", output="-", store=store)
    shouted = [Response.model_validate_json(line) for line in capsys.readouterr().out.splitlines()]
    assert again.answered == len(shouted) == 6
    assert all(r.response == by_id[r.id].instruction.upper() for r in shouted)
    source = inspect.getsource(infer_module)
    assert not [name for name in RUNTIMES.names() if f'"{name}"' in source]
