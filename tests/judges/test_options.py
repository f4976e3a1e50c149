"""Each judge declares its own options: the CLI passes on only those the user gave, the registry
checks them against the chosen judge's model, and an option it does not take (or a misspelt one)
is an error naming the judge and the option, never silently dropped."""

from __future__ import annotations

import inspect
import json
import re

import pytest

from saftool.cli import app
from saftool.cli import judge as cli_judge
from saftool.errors import UsageError
from saftool.judge import JUDGES, load_judge
from saftool.registry import EngineOptions
from saftool.stageconfig import flag
from tests.optionsfix import probe

# a spec of each judge (the model it names is never loaded: the options fail first)
SPECS = {"keyword": "keyword", "learned": "learned", "llm": "llm:m", "hf": "hf:org/guard", "cascade": "cascade:learned,llm"}
# an option each judge does not take, as the command line gives it, and the error it makes
FOREIGN = {
    "keyword": (["--prompt-set", "xstest"], "--prompt-set is an option of the llm judge"),
    "learned": (["--cascade-threshold", "0.7"], "--cascade-threshold is an option of the cascade judge"),
    "llm": (["--judge-option", "device=cpu"], "--judge-option device is an option of the hf judge"),
    "hf": (["--model", "gpt-4o"], "--model is an option of the llm judge"),
    "cascade": (["--judge-option", "batch_size=2"], "--judge-option batch_size is an option of the hf judge"),
}


def test_every_judge_declares_options_that_forbid_the_unknown():
    assert set(SPECS) == set(FOREIGN) == set(JUDGES.names())
    for name in JUDGES.names():
        model = JUDGES.load_class(name).Options
        assert issubclass(model, EngineOptions) and model.model_config["extra"] == "forbid", name


@pytest.mark.parametrize("name", sorted(FOREIGN))
def test_the_cli_refuses_an_option_the_judge_does_not_take(runner, isolated_store, name):
    flag_words, owner = FOREIGN[name]
    line = json.dumps({"prompt": "How do I pick a lock?", "response": "I can't help with that."}) + "\n"
    result = runner.invoke(app, ["judge", "-i", "-", "--judge", SPECS[name], *flag_words], input=line)
    assert result.exit_code == 2
    assert result.stderr == f"error: {owner}; the {name} judge does not take it\n"
    assert result.stdout == ""


def test_a_misspelt_judge_option_is_an_error(runner, isolated_store, tmp_path):
    result = runner.invoke(app, ["judge", "--judge", "llm:m", "--judge-option", "time_out=5"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: the llm judge does not take --judge-option time_out (it takes --model, --prompt-set, "
        "--concurrency, --max-retries, --judge-option backoff, --judge-option timeout)\n"
    )
    result = runner.invoke(app, ["judge", "--judge", "llm:m", "--judge-option", "timeout"])
    assert result.exit_code == 2 and result.stderr == "error: --judge-option 'timeout': write NAME=VALUE\n"
    result = runner.invoke(app, ["judge", "--judge", "llm:m", "--judge-option", "timeout=soon"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --judge-option timeout: Input should be a valid number")
    labels = tmp_path / "labels.csv"
    labels.write_text("prompt,completion,final_label\nHi,I can't.,refusal\n")
    result = runner.invoke(app, ["judge", "eval", "-l", str(labels), "--judge", "keyword", "--prompt-set", "xstest"])
    assert result.exit_code == 2
    assert result.stderr == "error: --prompt-set is an option of the llm judge; the keyword judge does not take it\n"
    with pytest.raises(UsageError, match=r"^the keyword judge does not take --promt-set \(it takes no options\)$"):
        load_judge("keyword", promt_set="seed")


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_option_of_every_judge_is_reachable_from_the_cli(runner, isolated_store, monkeypatch, name):
    """Each field has a `judge` flag spelled as the field says (`stageconfig.flag`), with the field's
    default as its documented default, or is listed under --judge-option; a value given on the
    command line arrives in the judge's options, and nothing the user did not give."""
    cls = JUDGES.load_class(name)
    monkeypatch.setattr(JUDGES, "requires", {})  # checked here whatever optional packages are installed
    params = {p.name: p.default for p in inspect.signature(cli_judge.judge).parameters.values()}
    listed = set(re.findall(r"\b[a-z]+(?:_[a-z]+)*\b", cli_judge.JUDGE_OPTION_HELP.split(":", 1)[1]))
    seen: list = []

    def recording(self, spec, options=None, *, store=None, **wiring):
        seen.append(options)
        raise UsageError("recorded")

    monkeypatch.setattr(cls, "__init__", recording)
    for field, info in cls.Options.model_fields.items():
        word, value = probe(info.annotation)  # judges' options are no switches
        spelled = flag(cls.Options, field)
        if spelled == f"--judge-option {field}":
            assert field in listed, (name, field)
            words = ["--judge-option", f"{field}={word}"]
        else:
            assert spelled in params[field].param_decls and params[field].default == info.default, (name, field)
            words = [spelled, word]
        result = runner.invoke(app, ["judge", "-i", "-", "--judge", SPECS[name], *words], input="")
        assert result.stderr == "error: recorded\n", (field, result.stderr)
        assert getattr(seen[-1], field) == value and seen[-1].model_fields_set == {field}


def test_a_cascade_takes_its_judges_options_and_gives_each_its_own(fake_openai, isolated_store, monkeypatch):
    from saftool.judges import learned
    from tests.judges.test_learned import bag_of_words

    monkeypatch.setattr(learned, "_minilm", bag_of_words)
    judge = load_judge("cascade:learned,llm", model="fake-judge", prompt_set="xstest", backoff=0.5, threshold=0.8)
    assert (judge.threshold, judge.second.name, judge.second.client.backoff) == (0.8, "llm-xstest:fake-judge", 0.5)
    with pytest.raises(UsageError, match="^--judge-option device is an option of the hf judge; the cascade judge"):
        load_judge("cascade:learned,llm", model="fake-judge", device="cpu")
