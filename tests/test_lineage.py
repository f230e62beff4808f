"""Lineage that cannot lie (issue 22, section 1)."""

from __future__ import annotations

import pytest

from infinstor_jlab.errors import BadRequest
from infinstor_jlab.transforms.capture import capture


@pytest.fixture
def transforms(service, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///" + str(tmp_path / "mlflow.db"))
    monkeypatch.chdir(tmp_path)  # MLflow's sqlite store keeps artifacts under ./mlruns
    from infinstor_jlab.transforms.executors import LocalExecutor
    from infinstor_jlab.transforms.service import TransformService
    from infinstor_jlab.transforms.store import TransformStore

    store = TransformStore(str(tmp_path / "index.sqlite"))
    return TransformService(
        service, store, str(tmp_path / "runs"), executors={"local": LocalExecutor(workers=2)}
    )


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("infin_transform_one_obj", "infin_transform_one_object"),
        ("infin_transfrom_all_objects", "infin_transform_all_objects"),
        ("infin_transform_dir_by_dirs", "infin_transform_dir_by_dir"),
        ("infin_transform_csv", "infin_transform_csv_to_pd"),
    ],
)
def test_a_misspelt_entry_point_is_refused_with_did_you_mean(name: str, meant: str) -> None:
    with pytest.raises(BadRequest, match=f"did you mean {meant}") as info:
        capture(f"def {name}(filename, output_dir, parentdir, **kwargs):\n    pass\n")
    assert name in str(info.value)


def test_an_unknown_infin_transform_function_is_refused() -> None:
    with pytest.raises(BadRequest, match="not an entry point"):
        capture("def infin_transform_everything_at_once(a, b):\n    pass\n")


def test_scripts_and_helpers_next_to_an_entry_point_still_capture() -> None:
    assert capture("import os\nprint(os.getcwd())\n").entry_point == "script"
    assert capture("def helper(x):\n    return x\nhelper(1)\n").entry_point == "script"
    code = "def infin_transform_one_object(filename, output_dir, parentdir, **kwargs):\n    pass\n"
    assert capture(code).entry_point == "infin_transform_one_object"


def test_a_misspelt_entry_point_is_refused_at_submit_before_anything_is_stored(transforms) -> None:
    source = "def infin_transform_one_obj(filename, output_dir, parentdir, **kwargs):\n    pass\n"
    with pytest.raises(BadRequest, match="did you mean infin_transform_one_object"):
        transforms.save_revision("typo", source)
    assert transforms.list_transforms() == []
