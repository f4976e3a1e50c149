"""Prompt formats: the Alpaca template, exactly as the study (and Stanford Alpaca) used it, and the
messages a chat template renders.

`train` and `infer` both format prompts here, so a model is always asked in the format it was
trained on.
"""

from __future__ import annotations

PROMPT_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)

PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:\n"
)


def format_prompt(instruction: str, input: str | None = "") -> str:
    """The text the model sees before its answer."""
    if input:
        return PROMPT_WITH_INPUT.format(instruction=instruction, input=input)
    return PROMPT_NO_INPUT.format(instruction=instruction)


def chat_messages(instruction: str, input: str | None = "", system: str | None = None) -> list[dict[str, str]]:
    """The conversation a chat-format prompt renders: an optional system message, then one user
    message holding the instruction and, below it, the input. `train --template chat` and
    `infer --template chat` both build their messages here, so a model is asked as it was tuned."""
    user = f"{instruction}\n\n{input}" if input else instruction
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": user}]


TEMPLATES = ("alpaca", "chat", "none")


def render_text(template: str, instruction: str, input: str | None = "") -> str:
    """The prompt text of a text template: `alpaca` (the study's) or `none` (the bare instruction, then
    the input below it, as `chat_messages` puts it in the user turn)."""
    if template == "alpaca":
        return format_prompt(instruction, input)
    return f"{instruction}\n\n{input}" if input else instruction


def template_text(template: str, chat_template: str | None = None) -> str:
    """The text that decides how prompts look, hashed into the generation config: Alpaca's two prompts,
    the tokenizer's chat template, or the rule of `none`."""
    if template == "alpaca":
        return PROMPT_WITH_INPUT + PROMPT_NO_INPUT
    if template == "chat":
        if not chat_template:
            raise ValueError("a chat prompt needs the tokenizer's chat template")
        return chat_template
    return "{instruction}\n\n{input}"
