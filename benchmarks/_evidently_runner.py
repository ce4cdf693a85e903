"""Run Evidently's DataDriftPreset on two Parquet files and print the figures as JSON.

Runs inside the benchmark's own Evidently venv (evidently 0.7.x, pandas < 3), started by
``drift_benchmark.py`` as a subprocess; not imported by ctpipe. Times only the computation
(``Dataset.from_pandas`` of both frames and ``Report.run``), not Parquet loading.

    python _evidently_runner.py REFERENCE.parquet CURRENT.parquet SPEC.json OUT.json

SPEC.json: ``{"numeric": [...], "categorical": [...]}``, declared explicitly in the data
definition so that Evidently types every column as ctpipe does (no inference).
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import time

import pandas as pd
from evidently import DataDefinition, Dataset, Report, __version__
from evidently.presets import DataDriftPreset


def main(argv: list[str]) -> int:
    ref_path, cur_path, spec_path, out_path = argv
    with open(spec_path, encoding="utf-8") as handle:
        spec = json.load(handle)
    numeric, categorical = spec["numeric"], spec["categorical"]
    reference = pd.read_parquet(ref_path)
    current = pd.read_parquet(cur_path)

    # Every column list given, so PandasDataset infers nothing.
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical,
                                text_columns=[], datetime_columns=[], unknown_columns=[],
                                list_columns=[])
    report = Report([DataDriftPreset()], include_tests=True)

    gc.collect()
    t0 = time.perf_counter()
    current_ds = Dataset.from_pandas(current, data_definition=definition)
    reference_ds = Dataset.from_pandas(reference, data_definition=definition)
    t1 = time.perf_counter()
    snapshot = report.run(current_ds, reference_ds)
    t2 = time.perf_counter()

    result = snapshot.dict()
    columns: dict[str, dict] = {}
    drifted_count = None
    for metric in result["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith(":ValueDrift"):
            columns[config["column"]] = {"method": config.get("method"),
                                         "threshold": config.get("threshold"),
                                         "score": metric["value"], "drifted": None}
        elif config.get("type", "").endswith(":DriftedColumnsCount"):
            drifted_count = metric["value"]
    for test in result["tests"]:
        params = test["metric_config"]["params"]
        if test["id"] == "drift" and params.get("column") in columns:
            # Evidently's own verdict: the per-column test fails when drift is detected.
            columns[params["column"]]["drifted"] = test["status"] == "FAIL"
    column_types = {c: current_ds.data_definition.get_column_type(c).value
                    for c in [*numeric, *categorical]}
    out = {
        "evidently_version": __version__,
        "pandas_version": pd.__version__,
        "rows_reference": len(reference), "rows_current": len(current),
        "seconds_dataset": t1 - t0,
        "seconds_run": t2 - t1,
        "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "column_types": column_types,
        "drifted_columns": drifted_count,
        "columns": columns,
    }
    with open(out_path, "w", encoding="utf-8") as handle:
        json.dump(out, handle, default=float)
    print(json.dumps({"seconds_run": out["seconds_run"],
                      "seconds_dataset": out["seconds_dataset"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
