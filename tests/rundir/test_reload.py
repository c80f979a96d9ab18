import json

import pytest
import torch
from safetensors.torch import save_file

from transferlab.errors import WeightsError
from transferlab.rundir.reload import load_saved_model


def test_multi_task_models_are_refused_by_eval_with_the_alternative(tmp_path):
    path = tmp_path / "model.safetensors"
    meta = {
        "backbone_name": "small_cnn",
        "num_classes": json.dumps({"a": 2}),
        "config": "{}",
        "tasks": json.dumps({"a": ["x", "y"]}),
    }
    save_file({"backbone.w": torch.zeros(1), "heads.a.weight": torch.zeros(2, 1)}, str(path), metadata=meta)
    with pytest.raises(WeightsError, match=r"multi-task model \(tasks a\).*backbone=checkpoint"):
        load_saved_model(path)


def test_files_not_written_by_transferlab_say_how_to_use_them(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file({"conv.weight": torch.zeros(1)}, str(path))
    with pytest.raises(WeightsError, match=r"not written by 'transferlab train'.*backbone=<arch> backbone\.weights"):
        load_saved_model(path)
