import subprocess
import sys
from pathlib import Path

import pytest

from ctpipe.config import ConfigError, load_config, parse_config
from ctpipe.workspace import open_workspace

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


def test_loading_a_config_imports_neither_validation_nor_gx() -> None:
    # GX costs seconds to import: a config with extra expectations still loads without it.
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from ctpipe.config import parse_config\n"
        f"parse_config({MINIMAL!r} + 'validation: {{extra: [{{type: expect_bogus}}]}}\\n',\n"
        "             Path('toy.yaml'))\n"
        "assert 'ctpipe.validation' not in sys.modules, 'ctpipe.validation imported'\n"
        "assert 'great_expectations' not in sys.modules, 'great_expectations imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(("extra", "problem"), [
    ("{type: expect_column_values_to_be_bogus, kwargs: {column: a}}",
     "unknown Great Expectations expectation type 'expect_column_values_to_be_bogus'"),
    ("{type: expect_column_mean_to_be_between, kwargs: {column: a, maximum: 3}}", "maximum"),
])
def test_bad_gx_expectation_is_a_config_error_when_the_workspace_opens(
        tmp_path: Path, extra: str, problem: str) -> None:
    path = tmp_path / "toy.yaml"
    path.write_text(MINIMAL + "validation:\n  extra:\n"
                    "    - {type: expect_column_mean_to_be_between, kwargs: {column: a}}\n"
                    f"    - {extra}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        open_workspace(str(path))
    message = str(err.value)
    assert message.startswith(f"{path}: invalid config\n"), message
    assert "validation.extra.1" in message and "validation.extra.0" not in message, message
    assert problem in message, message
