from pathlib import Path

import pytest

from ctpipe.config import ConfigError, load_config, parse_config

MINIMAL = """
name: toy
data: {time_column: t, target: y, task: regression}
features: {numeric: [a]}
evaluation: {metric: wape}
gate: {floor: 0.5}
"""


@pytest.mark.parametrize("name", ["demand", "fraud"])
def test_reference_configs_load(name: str) -> None:
    cfg = load_config(name)
    assert cfg.name == name
    assert cfg.registered_model == f"ctpipe-{name}"
    assert len(cfg.config_hash) == 16


def test_unknown_key_names_file_and_path() -> None:
    text = MINIMAL.replace("task: regression", "task: regression, colour: red")
    with pytest.raises(ConfigError) as err:
        parse_config(text, Path("configs/toy.yaml"))
    assert "configs/toy.yaml" in str(err.value)
    assert "data.colour: unknown key" in str(err.value)


def test_wrong_type_names_key_path() -> None:
    text = MINIMAL.replace("gate: {floor: 0.5}", "gate: {floor: high}")
    with pytest.raises(ConfigError, match=r"gate\.floor"):
        parse_config(text, Path("toy.yaml"))


def test_bad_task_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"data\.task"):
        parse_config(MINIMAL.replace("regression", "ranking"), Path("toy.yaml"))


def test_slices_must_be_features() -> None:
    text = MINIMAL.replace("metric: wape}", "metric: wape, slices: [region]}")
    with pytest.raises(ConfigError, match="evaluation.slices names columns that are not features"):
        parse_config(text, Path("toy.yaml"))


def test_holdout_smaller_than_window() -> None:
    text = MINIMAL + "training: {window: 3, holdout: 3}\n"
    with pytest.raises(ConfigError, match="holdout"):
        parse_config(text, Path("toy.yaml"))


def test_yaml_is_parsed_safely() -> None:
    with pytest.raises(ConfigError, match="not valid YAML|expected a mapping"):
        parse_config("!!python/object/apply:os.system ['echo hi']", Path("evil.yaml"))


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_null_fraction_is_a_share_of_a_batch_column() -> None:
    as_percent = MINIMAL + "validation: {null_fraction: {a: 5}}\n"
    with pytest.raises(ConfigError, match=r"validation\.null_fraction\.a"):
        parse_config(as_percent, Path("toy.yaml"))
    typo = MINIMAL + "validation: {null_fraction: {aa: 0.1}}\n"
    with pytest.raises(ConfigError, match=r"not in the batch: \['aa'\]"):
        parse_config(typo, Path("toy.yaml"))
