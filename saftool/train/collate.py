"""The training data: items as the texts and prompt-completion dataset the trainer sees, and the
row-packing collator of the lean CPU path."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from saftool.records import Item
from saftool.template import chat_messages, format_prompt


def training_texts(items: list[Item]) -> Iterator[str]:
    """Each item as the model sees it in training (prompt in the Alpaca template, then the answer): the tiny tokenizer's corpus."""
    for item in items:
        yield format_prompt(item.instruction, item.input) + item.output


def prompt_completion_dataset(items: list[Item], template: str = "alpaca", system: str | None = None):
    """The items as the prompt-completion dataset SFTTrainer trains on: Alpaca-template text, or
    (template "chat") conversations that TRL renders with the tokenizer's chat template, the prompt
    with the generation prompt (the assistant header), the completion as the assistant turn."""
    from datasets import Dataset

    if template == "chat":
        return Dataset.from_dict(
            {
                "prompt": [chat_messages(item.instruction, item.input, system) for item in items],
                "completion": [[{"role": "assistant", "content": item.output}] for item in items],
            }
        )
    return Dataset.from_dict(
        {
            "prompt": [format_prompt(item.instruction, item.input) for item in items],
            "completion": [item.output for item in items],
        }
    )


# A batch's examples each get a row of their own, padded, unless that costs this many times the
# positions of packing them. Packed rows need a block-diagonal mask, with which torch's CPU attention
# computes every (query, key) pair of the row; one example per row needs none, and causal attention
# skips the pairs above the diagonal. On SmolLM2-135M with the preset's length-grouped batches (rows
# of ~250 packed tokens) attention took 19% of a LoRA step packed, so padding pays while it adds less.
PAD_RATHER_THAN_PACK = 1.2


class RowPackingCollator:
    """Batches of one-process CPU runs without padding waste: the batch's examples (the same
    examples TRL's collator would batch, so a step means the same thing) go first-fit-decreasing into
    rows of up to `row_length` tokens, with position ids restarting at each example and no attention
    mask, so transformers builds a block-diagonal causal mask and no example attends to another.
    Random batches of the tiny mix padded to their longest example are 2.6x their real tokens; packed
    rows are a few percent. Labels at each example's first position are ignored, as in TRL's
    padding-free collator (nothing before it in the row may predict it).

    Where the examples are of similar length (length-grouped batches), padding each to the longest
    costs few positions more than packing (`PAD_RATHER_THAN_PACK`), and then each gets its own row,
    padded on the right: causal attention keeps every real token from seeing the padding after it,
    so these rows need no mask at all.
    """

    def __init__(self, pad_token_id: int, row_length: int):
        self.pad_token_id = pad_token_id
        self.row_length = row_length
        # with frozen lower layers (frozen_prefix): their output for each example, keyed by its ids;
        # the batch then also carries it, laid out as the ids are, as `inputs_embeds`
        self.frozen_states: dict[tuple[int, ...], Any] | None = None

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        seqs = sorted(
            ((list(ex["input_ids"]), list(ex.get("labels", ex["input_ids"]))) for ex in examples),
            key=lambda s: -len(s[0]),
        )
        longest = len(seqs[0][0])
        rows = self._packed_rows(seqs, max(self.row_length, longest))
        width = max(sum(len(ids) for ids, _ in row) for row in rows)
        if len(seqs) * longest <= PAD_RATHER_THAN_PACK * len(rows) * width:
            rows, width = [[seq] for seq in seqs], longest
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        labels_out = torch.full((len(rows), width), -100, dtype=torch.long)
        position_ids = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            at = 0
            for ids, labels in row:
                n = len(ids)
                input_ids[r, at : at + n] = torch.tensor(ids)
                labels_out[r, at : at + n] = torch.tensor(labels)
                labels_out[r, at] = -100
                # positions restart at each example; the row's padding continues the last one's, so a
                # row of one example is one sequence (no mask), and padding sees only what precedes it
                position_ids[r, at:] = torch.arange(width - at)
                at += n
        batch = {"input_ids": input_ids, "labels": labels_out, "position_ids": position_ids}
        if self.frozen_states is not None:
            batch["inputs_embeds"] = self._frozen_rows(rows, width)
        return batch

    def _frozen_rows(self, rows, width: int):
        """The frozen layers' output of each row's examples, side by side as their ids are; zeros at
        the padding (which no real position attends to)."""
        import torch

        first = self.frozen_states[tuple(rows[0][0][0])]
        out = torch.zeros((len(rows), width, first.shape[-1]), dtype=first.dtype)
        for r, row in enumerate(rows):
            at = 0
            for ids, _ in row:
                out[r, at : at + len(ids)] = self.frozen_states[tuple(ids)]
                at += len(ids)
        return out

    @staticmethod
    def _packed_rows(seqs, cap: int) -> list[list[tuple[list[int], list[int]]]]:
        """First-fit-decreasing: `seqs`, longest first, into rows of at most `cap` tokens."""
        rows: list[list[tuple[list[int], list[int]]]] = []
        used: list[int] = []
        for ids, labels in seqs:
            row = next((r for r, n in enumerate(used) if n + len(ids) <= cap), None)
            if row is None:
                rows.append([])
                used.append(0)
                row = len(rows) - 1
            rows[row].append((ids, labels))
            used[row] += len(ids)
        return rows
