from __future__ import annotations

from saftool.train.checkpoints import checkpoint_complete


def test_torn_checkpoints_are_not_resumed_from(tmp_path):
    """A kill during a save leaves a checkpoint without (or with half of) its weights."""
    import torch
    from safetensors.torch import save_file

    good = tmp_path / "checkpoint-5"
    good.mkdir()
    (good / "trainer_state.json").write_text("{}")
    save_file({"w": torch.zeros(64)}, str(good / "model.safetensors"))
    assert checkpoint_complete(good)

    torn = tmp_path / "checkpoint-10"
    torn.mkdir()
    (torn / "trainer_state.json").write_text("{}")
    assert not checkpoint_complete(torn)  # state written, weights not yet
    data = (good / "model.safetensors").read_bytes()
    (torn / "model.safetensors").write_bytes(data[:-16])
    assert not checkpoint_complete(torn)  # weights cut short
    (torn / "model.safetensors").write_bytes(data)
    (torn / "trainer_state.json").write_text('{"global_step": ')
    assert not checkpoint_complete(torn)  # state cut short


def test_sharded_checkpoint_layouts_are_recognised(tmp_path):
    """FSDP's torch.distributed.checkpoint folder is complete once its .metadata is written;
    DeepSpeed's global_stepN once `latest` names it and its model states are there."""
    fsdp = tmp_path / "checkpoint-4"
    (fsdp / "pytorch_model_fsdp_0").mkdir(parents=True)
    (fsdp / "trainer_state.json").write_text("{}")
    (fsdp / "pytorch_model_fsdp_0" / "__0_0.distcp").write_bytes(b"shard")
    assert not checkpoint_complete(fsdp)  # shards written, metadata not yet
    (fsdp / "pytorch_model_fsdp_0" / ".metadata").write_bytes(b"meta")
    assert checkpoint_complete(fsdp)
    ds = tmp_path / "checkpoint-6"
    (ds / "global_step6").mkdir(parents=True)
    (ds / "trainer_state.json").write_text("{}")
    (ds / "latest").write_text("global_step6")
    assert not checkpoint_complete(ds)
    (ds / "global_step6" / "mp_rank_00_model_states.pt").write_bytes(b"states")
    assert checkpoint_complete(ds)
