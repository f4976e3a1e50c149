"""The process around a training session: torch threads for tool-built models, the libraries' own
bars and logs silenced, and saftool's one progress bar and clock."""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from collections.abc import Iterator

from saftool.presets import TrainConfig


class SessionClock:
    """Training time and tokens of this session (a resumed run counts only what it trained itself)."""

    seconds = 0.0
    tokens_at_start = 0


def progress_callback(bar, clock: SessionClock):
    """A TrainerCallback that moves the one progress bar (None: this process shows none) and times training."""
    from transformers import TrainerCallback

    class ProgressBar(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            clock.tokens_at_start = state.num_input_tokens_seen
            self.t0 = time.monotonic()
            if bar is not None:
                bar.update(total=state.max_steps, completed=state.global_step)

        def on_step_end(self, args, state, control, **kwargs):
            if bar is not None:
                bar.update(completed=state.global_step)

        def on_train_end(self, args, state, control, **kwargs):
            clock.seconds = time.monotonic() - self.t0

    return ProgressBar()


@contextlib.contextmanager
def cpu_threads(config: TrainConfig, use_cuda: bool) -> Iterator[None]:
    """One torch thread while a tool-built (tiny/smoke) model trains on the CPU; restored afterwards.

    Its matrices are too small to split: on the 2-core box, 1 thread gave 9.2k tok/s and 2 threads
    10.2k with OMP_WAIT_POLICY=PASSIVE, but 2 threads with the default (spinning) OpenMP wait policy
    fell to 0.6k tok/s whenever another process used a core (intra-op threads spin waiting for a
    busy core). The wait policy cannot be changed once torch has loaded, so 1 thread is the safe
    choice. Real models (--base-model) and GPU runs keep torch's default.
    """
    if use_cuda or config.base_model is not None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Silence the libraries' own bars, info logs and warnings; saftool reports progress itself."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)
    import datasets
    import transformers

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
