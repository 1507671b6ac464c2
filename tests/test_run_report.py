"""The run report record: it round-trips through its dict, owns the speed formula and says when its error list is cut."""
import pandas as pd

from prediction_file import PredictFailures, _accounted_for
from report_reader import predict_failures
from run_report import ERRORS_SHOWN, RunReport, SetFigures, throughput


def _report(listed: int, total: int) -> RunReport:
    errors = [{"set": "degraded", "image_id": f"id{i}", "error": "predict raised"} for i in range(listed)]
    sets = {"pristine": SetFigures(images=10, predicted=10), "degraded": SetFigures(images=total, errors=total)}
    return RunReport(status="ok", sets=sets, errors=errors, errors_total=total)


def test_the_record_round_trips_and_ignores_unknown_keys():
    report = _report(3, 3)
    assert RunReport.from_dict(report.to_dict() | {"from_a_later_version": 1}) == report


def test_throughput_is_zero_without_measured_time():
    assert throughput(50, 2.0) == 25.0
    assert throughput(50, 0.0) == 0.0


def test_a_list_shorter_than_its_cap_is_complete():
    assert _report(3, 3).errors_complete
    assert not _report(ERRORS_SHOWN, ERRORS_SHOWN + 5).errors_complete
    assert predict_failures(_report(3, 3)).complete
    assert not predict_failures(_report(ERRORS_SHOWN, ERRORS_SHOWN + 5)).complete


def test_a_complete_list_must_name_every_missing_image():
    missing = pd.DataFrame({"image_id": ["a", "b"], "set": ["degraded", "degraded"]})
    per_set = {"pristine": 0, "degraded": 2}
    assert _accounted_for(missing, PredictFailures(per_set, frozenset({"a", "b"}), complete=True))
    assert not _accounted_for(missing, PredictFailures(per_set, frozenset({"a"}), complete=True))
    assert _accounted_for(missing, PredictFailures(per_set, frozenset({"a"}), complete=False))
    assert not _accounted_for(missing, PredictFailures(per_set, frozenset({"c"}), complete=False))
