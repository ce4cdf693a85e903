import subprocess
import sys
from pathlib import Path

import pytest

from ctpipe.config import ConfigError, load_config, parse_config, repo_configs_dir
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


@pytest.mark.parametrize(("data", "error"), [
    ("csv_decimal: ','", "toy.yaml: data: csv_decimal ',' is also csv_delimiter: a CSV file "
     "with decimal commas separates its fields with ';'"),
    ("csv_decimal: ';'", "toy.yaml: data.csv_decimal: "),
])
def test_the_csv_decimal_mark_is_checked(data: str, error: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(MINIMAL.replace("task: regression", f"task: regression, {data}"),
                     Path("toy.yaml"))
    assert str(err.value).startswith(error) and "\n" not in str(err.value)
    # Only a decimal comma can clash: a '.' delimiter with the default mark stays as it was.
    dotted = MINIMAL.replace("task: regression", "task: regression, csv_delimiter: '.'")
    assert parse_config(dotted, Path("toy.yaml")).data.csv_decimal == "."


@pytest.mark.parametrize(("params", "error"), [
    ("{n_estimater: 150}", "toy.yaml: training.params.n_estimater: not a LightGBM parameter "
     "(did you mean n_estimators?)"),
    # Nearest is the alias num_leaf; the hint names what a config writes.
    ("{num_leafs: 7}", "toy.yaml: training.params.num_leafs: not a LightGBM parameter "
     "(did you mean num_leaves?)"),
    ("{num_boost_roud: 7}", "toy.yaml: training.params.num_boost_roud: not a LightGBM "
     "parameter (did you mean n_estimators?)"),
    ("{bagging_fractoin: 0.5}", "toy.yaml: training.params.bagging_fractoin: not a LightGBM "
     "parameter (did you mean bagging_fraction?)"),
    ("{num_leaves: seven}", "toy.yaml: training.params: LightGBM refuses them: Parameter "
     'num_leaves should be of type int, got "seven"'),
    ("{learning_rate: -1}", "toy.yaml: training.params: LightGBM refuses them: learning_rate "
     "must be > 0.0"),
    ("{max_depth: 3.0}", "toy.yaml: training.params: LightGBM refuses them: Parameter "
     'max_depth should be of type int, got "3.0"'),
    # The probe sets its own rounds and threads: the user's are checked apart.
    ("{n_estimators: many}", "toy.yaml: training.params.n_estimators: must be a whole number "
     ">= 1, got 'many'"),
    ("{num_boost_round: 0}", "toy.yaml: training.params.num_boost_round: must be a whole "
     "number >= 1, got 0"),
    ("{n_jobs: x}", "toy.yaml: training.params.n_jobs: must be a whole number, got 'x'"),
])
def test_lightgbm_params_are_checked_when_the_config_loads(
        params: str, error: str, capfd: pytest.CaptureFixture[str]) -> None:
    # LightGBM reads them only when it trains: a typo was dropped without a word, and a wrong
    # value failed the first retrain, deep in a run, with a traceback.
    from ctpipe import lightgbm_params

    lightgbm_params._fit_problem.cache_clear()  # LightGBM runs, and would print, here
    config = parse_config(MINIMAL + f"training: {{params: {params}}}\n", Path("toy.yaml"))
    with pytest.raises(ConfigError) as err:
        lightgbm_params.check_training_params(config, Path("toy.yaml"))
    assert str(err.value) == error
    assert "[LightGBM]" not in capfd.readouterr().err  # LightGBM's own print is muted


@pytest.mark.parametrize("params", [
    "{num_leaves: 15, min_data_in_leaf: 5, bagging_fraction: 0.8, bagging_freq: 1}",
    "{max_depth: 3}",  # after 3.0 was refused: the cache tells 3 from 3.0
    "{objective: tweedie}", "{objective: poisson}", "{objective: gamma}",
    # Per-feature, named or device settings a 2-feature probe cannot judge: names only.
    "{monotone_constraints: '1,-1,0', categorical_feature: 'name:station'}",
    "{device_type: gpu}",
    "{n_jobs: -1, verbosity: 1, num_iterations: 100000}",
])
def test_lightgbm_params_it_accepts_pass(params: str, capfd: pytest.CaptureFixture[str]) -> None:
    from ctpipe.lightgbm_params import check_training_params

    config = parse_config(MINIMAL + f"training: {{params: {params}}}\n", Path("toy.yaml"))
    check_training_params(config, Path("toy.yaml"))
    assert "[LightGBM]" not in capfd.readouterr().out  # the user's verbosity is not probed


def test_bad_lightgbm_params_stop_a_replay_before_it_starts(ctpipe_home: Path,
                                                            tmp_path: Path) -> None:
    # Checked when the workspace opens (config loading stays free of LightGBM): a replay
    # once trained 8 batches before the first retrain died with an 860-line traceback.
    from typer.testing import CliRunner

    from ctpipe.cli import app

    config = tmp_path / "demand.yaml"
    config.write_text((repo_configs_dir() / "demand.yaml").read_text().replace(
        "num_leaves: 31", "num_leaves: seven"))
    result = CliRunner().invoke(app, ["backtest", str(config)])
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [
        f"{config}: training.params: LightGBM refuses them: Parameter num_leaves should be of "
        'type int, got "seven"']
    assert not (ctpipe_home / "backtests").exists()


def test_wrong_type_names_key_path() -> None:
    text = MINIMAL.replace("gate: {floor: 0.5}", "gate: {floor: high}")
    with pytest.raises(ConfigError, match=r"gate\.floor"):
        parse_config(text, Path("toy.yaml"))


@pytest.mark.parametrize(("task", "metric", "floor", "bounds", "side"), [
    ("binary", "pr_auc", "1.5", "0 and 1", "at least"),
    ("binary", "roc_auc", "1.01", "0 and 1", "at least"),
    ("regression", "mae", "-2", "0 and inf", "at most"),
])
def test_a_floor_no_model_can_reach_is_refused(task: str, metric: str, floor: str, bounds: str,
                                               side: str) -> None:
    text = MINIMAL.replace("regression", task).replace("wape", metric).replace("0.5", floor)
    with pytest.raises(ConfigError) as err:
        parse_config(text, Path("toy.yaml"))
    assert str(err.value) == (
        f"toy.yaml: gate.floor {floor} is out of reach: {metric} lies between {bounds}, so no "
        f"challenger could ever pass the gate ({side} the floor)")


@pytest.mark.parametrize(("task", "metric", "floor"), [
    ("binary", "roc_auc", "1"), ("binary", "pr_auc", "0"), ("regression", "rmse", "0"),
    ("regression", "wape", "1000")])
def test_a_floor_at_the_metrics_bounds_is_taken(task: str, metric: str, floor: str) -> None:
    text = MINIMAL.replace("regression", task).replace("wape", metric).replace("0.5", floor)
    assert parse_config(text, Path("toy.yaml")).gate.floor == float(floor)


def test_bad_task_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"data\.task"):
        parse_config(MINIMAL.replace("regression", "ranking"), Path("toy.yaml"))


def test_slices_must_be_features() -> None:
    text = MINIMAL.replace("metric: wape}", "metric: wape, slices: [region]}")
    with pytest.raises(ConfigError, match="evaluation.slices names columns that are not features"):
        parse_config(text, Path("toy.yaml"))


def test_a_rule_for_a_misspelled_feature_lists_the_features() -> None:
    # The typo is in features.numeric (precipitaton): the range entry is right, so the
    # message shows both sides on its one line.
    text = MINIMAL.replace("numeric: [a]", "numeric: [temp_min, precipitaton, wind]") + (
        "validation: {ranges: {precipitation: {min: 0, max: 200}}}\n")
    with pytest.raises(ConfigError) as err:
        parse_config(text, Path("w.yaml"))
    assert str(err.value) == (
        "w.yaml: validation.ranges names columns that are not features: ['precipitation'] "
        "(features: ['temp_min', 'precipitaton', 'wind'])")


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
    assert message.startswith(f"{path}: validation.extra.1: "), message
    assert "\n" not in message and "validation.extra.0" not in message, message
    assert problem in message, message


# --- edges: NaN/inf, duplicate keys, encoding, model names, time zone, hash stability ---


@pytest.mark.parametrize(("text", "path"), [
    (MINIMAL.replace("floor: 0.5", "floor: .nan"), "gate.floor (nan)"),
    (MINIMAL + "validation: {null_fraction: {a: .inf}}\n", "validation.null_fraction.a (inf)"),
    (MINIMAL + "training: {params: {learning_rate: -.inf}}\n",
     "training.params.learning_rate (-inf)"),
    (MINIMAL + "validation: {ranges: {a: {min: 0, max: .NaN}}}\n",
     "validation.ranges.a.max (nan)"),
])
def test_nan_and_infinity_are_refused_with_the_key_path(text: str, path: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, Path("toy.yaml"))
    message = str(err.value)
    assert message == f"toy.yaml: {path}: not a finite number (NaN and infinity are refused)"


def test_nan_is_refused_in_a_config_built_in_code() -> None:
    import yaml

    from ctpipe.config import UseCaseConfig

    raw = yaml.safe_load(MINIMAL)
    raw["gate"]["floor"] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        UseCaseConfig.model_validate(raw)


def test_a_repeated_key_names_file_key_and_lines() -> None:
    text = MINIMAL + "gate: {floor: 4}\n"  # the second gate would silently win
    with pytest.raises(ConfigError) as err:
        parse_config(text, Path("configs/toy.yaml"))
    assert str(err.value) == ("configs/toy.yaml: key 'gate' repeated at the top level on line 7 "
                              "(first on line 6): YAML keeps only the last value; remove one")


def test_a_repeated_nested_key_names_its_section() -> None:
    text = ("name: toy\ndata:\n  time_column: t\n  target: y\n  task: regression\n"
            "  target: z\nfeatures: {numeric: [a]}\nevaluation: {metric: wape}\n"
            "gate: {floor: 0.5}\n")
    with pytest.raises(ConfigError, match=r"key 'target' repeated under data on line 6 "
                       r"\(first on line 4\)"):
        parse_config(text, Path("toy.yaml"))


def test_merge_keys_and_aliases_are_not_repeats() -> None:
    # `<<` brings keys in that the mapping may override; an alias reuses a checked mapping.
    merged = MINIMAL.replace("gate: {floor: 0.5}", "gate:\n  <<: {floor: 0.3, min_improvement: "
                             "0.2}\n  floor: 0.5\n")
    merged = merged.replace("numeric: [a]", "numeric: [a, b]")
    merged += "validation:\n  ranges: {a: &bounds {min: 0, max: 9}, b: *bounds}\n"
    cfg = parse_config(merged, Path("toy.yaml"))
    assert (cfg.gate.floor, cfg.gate.min_improvement) == (0.5, 0.2)
    assert cfg.validation.ranges["a"] == cfg.validation.ranges["b"]
    assert cfg.validation.ranges["b"].max == 9


def test_a_config_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "toy.yaml"
    path.write_bytes(MINIMAL.replace("name: toy", "description: caf\xe9\nname: toy")
                     .encode("latin-1"))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert message.startswith(f"{path}: not UTF-8 text") and "\n" not in message


def test_invalid_yaml_is_one_line_with_its_position() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config("name: toy\ndata: [1, 2\ngate: 3\n", Path("toy.yaml"))
    message = str(err.value)
    assert message.startswith("toy.yaml: not valid YAML: ") and "(line 3, column" in message
    assert "\n" not in message


@pytest.mark.parametrize("name", ["it's", 'a"b', "demand model", "-lead", "x" * 120, "é"])
def test_model_name_must_be_safe_in_registry_filters(name: str) -> None:
    import yaml

    text = MINIMAL + f"model_name: {yaml.safe_dump(name).splitlines()[0]}\n"
    with pytest.raises(ConfigError) as err:
        parse_config(text, Path("toy.yaml"))
    assert "model_name:" in str(err.value) and "not a usable registered model name" in \
        str(err.value)


def test_usable_model_names_and_the_derived_one() -> None:
    cfg = parse_config(MINIMAL + "model_name: Fraud_v2.hk-1\n", Path("toy.yaml"))
    assert cfg.registered_model == "Fraud_v2.hk-1"
    longest = "x" * 112  # ctpipe-<name> is 119 characters: "-backtest" still fits 128
    assert parse_config(MINIMAL.replace("name: toy", f"name: {longest}"),
                        Path("t.yaml")).registered_model == f"ctpipe-{longest}"
    with pytest.raises(ConfigError, match="shorten name or set model_name"):
        parse_config(MINIMAL.replace("name: toy", f"name: {longest}x"), Path("t.yaml"))


def test_timezone_is_an_iana_zone() -> None:
    assert parse_config(MINIMAL, Path("t.yaml")).data.timezone == "UTC"
    hk = MINIMAL.replace("task: regression", "task: regression, timezone: Asia/Hong_Kong")
    assert parse_config(hk, Path("t.yaml")).data.timezone == "Asia/Hong_Kong"
    for bad in ("Mars/Olympus", "Asia", "+08:00", ""):
        text = MINIMAL.replace("task: regression", f"task: regression, timezone: '{bad}'")
        with pytest.raises(ConfigError, match=r"data\.timezone: .*unknown IANA time zone"):
            parse_config(text, Path("t.yaml"))


def test_the_reference_configs_keep_their_hashes() -> None:
    # Pinned: registered versions are found by config_hash, and a batch that passed is checked
    # again when validation_hash changes. A key added with a default must leave both alone
    # (_HASH_NEUTRAL_DEFAULTS); only a deliberate change of the rules may move them.
    hashes = {n: (load_config(n).config_hash, load_config(n).validation_hash)
              for n in ("demand", "fraud")}
    assert hashes == {"demand": ("f47972a550b6fc6f", "307c63093cbccce8"),
                      "fraud": ("593c0a0505fcfdb9", "1c7dfcdb95c5d448")}


def test_new_keys_at_their_default_keep_the_config_hash() -> None:
    # Registered versions are found by config_hash: adding data.timezone and
    # data.drop_null_targets and data.na_values must not change the hash of a config that
    # does not set them.
    base = parse_config(MINIMAL, Path("t.yaml")).config_hash
    explicit = MINIMAL.replace(
        "task: regression", "task: regression, timezone: UTC, drop_null_targets: false, "
        "na_values: [], csv_decimal: '.'")
    assert parse_config(explicit, Path("t.yaml")).config_hash == base
    for change in ("timezone: Asia/Hong_Kong", "drop_null_targets: true", "na_values: [nil]"):
        text = MINIMAL.replace("task: regression", f"task: regression, {change}")
        assert parse_config(text, Path("t.yaml")).config_hash != base, change
    semicolons = MINIMAL.replace("task: regression", "task: regression, csv_delimiter: ';'")
    plain, commas = (parse_config(text, Path("t.yaml")) for text in (
        semicolons, semicolons.replace("csv_delimiter", "csv_decimal: ',', csv_delimiter")))
    assert plain.config_hash != commas.config_hash  # the same file reads differently
    assert plain.validation_hash != commas.validation_hash


def test_an_unknown_use_case_names_each_place_looked_in_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ctpipe.config import repo_configs_dir

    repo = repo_configs_dir().parent
    monkeypatch.chdir(repo)
    with pytest.raises(ConfigError) as raised:
        load_config("nosuch")
    assert str(raised.value) == ("no config for use case 'nosuch': looked for "
                                 f"configs/nosuch.yaml in {repo}; a config elsewhere: pass "
                                 "its path")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=f"in {tmp_path} and {repo}; a config"):
        load_config("nosuch")
    # A config beside the user is named: a use-case name is looked up in configs/ only.
    (tmp_path / "nosuch.yaml").write_text("name: nosuch\n")
    with pytest.raises(ConfigError, match=r"; nosuch\.yaml is here: pass its path "
                       r"\(ctpipe \.\.\. \./nosuch\.yaml\)$"):
        load_config("nosuch")


@pytest.mark.parametrize(("text", "message"), [
    # The derived hour would replace the source's own column of that name.
    (MINIMAL.replace("numeric: [a]", "numeric: [a, hour], calendar: [hour]"),
     "features: calendar part 'hour' is also listed as a feature column: the part derived "
     "from the time column would replace it; rename the column or drop the calendar part"),
    (MINIMAL + "validation: {ranges: {a: {min: 10, max: 0}}}\n",
     "validation.ranges.a: min 10 is above max 0: no value could pass"),
    # A domain column is read as text: a numeric feature would fail its dtype rule.
    (MINIMAL + "validation: {domains: {a: ['1', '2']}}\n",
     "validation.domains names the numeric feature 'a': bounds for numbers go under "
     "validation.ranges"),
    (MINIMAL.replace("numeric: [a]", "numeric: [a], categorical: [c]")
     + "validation: {ranges: {c: {min: 0}}}\n",
     "validation.ranges names the categorical feature 'c': allowed values of a category go "
     "under validation.domains"),
])
def test_rules_every_batch_would_break_are_config_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(text, Path("toy.yaml"))
    assert str(err.value) == f"toy.yaml: {message}"


def test_week_start_is_for_weekly_batches_and_leaves_the_hashes_alone() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(MINIMAL.replace("task: regression", "task: regression, "
                                     "week_start: sunday"), Path("toy.yaml"))
    assert str(err.value) == ("toy.yaml: data: week_start 'sunday' applies to weekly batches "
                              "only (batch_frequency is daily)")
    plain = parse_config(MINIMAL, Path("toy.yaml"))
    monday = parse_config(MINIMAL.replace("task: regression", "task: regression, "
                                          "week_start: monday"), Path("toy.yaml"))
    assert (plain.config_hash, plain.validation_hash) == (monday.config_hash,
                                                          monday.validation_hash)
