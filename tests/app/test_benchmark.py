"""The benchmark's run: what it keeps of a workspace's earlier runs (the real CLI run is
tests/e2e/test_demo_and_benchmark.py; the statistics: test_run_statistics.py; the report: test_benchmark_report.py)."""

from nnunet_pruning.app.benchmark import _other_scored_runs


class _Workspace:
    """Scored runs on disk as the pipeline finds them; one of them cannot be read any more."""

    def __init__(self, scored):
        self.scored, self.read = scored, []

    def scored_runs(self):
        return self.scored

    def run_record(self, trainer, fold):
        self.read.append((trainer, fold))
        if trainer == "gone":
            raise RuntimeError("no trainer class nnUNetTrainergone\nmore detail")
        return {"trainer": trainer, "fold": fold, "test_dice": 0.5}


def test_other_scored_runs_skip_this_invocations_and_say_what_is_left_out():
    pipeline, said = _Workspace([("flat", "0"), ("gone", "0"), ("stamp", "0"), ("stock", "3")]), []
    others = _other_scored_runs(pipeline, [{"trainer": "stamp", "fold": "0"}], said.append)
    assert [(r["trainer"], r["fold"]) for r in others] == [("flat", "0"), ("stock", "3")]
    assert ("stamp", "0") not in pipeline.read
    assert said == ["3 other runs scored in this workspace before (other trainers or folds): kept in results.json "
                    "and runs.csv", "left out gone fold 0, scored before but unreadable now: no trainer class "
                    "nnUNetTrainergone"]
    assert _other_scored_runs(_Workspace([("stamp", "0")]), [{"trainer": "stamp", "fold": "0"}], said.append) == []
    assert len(said) == 2

