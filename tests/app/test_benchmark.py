"""The benchmark's run: what it keeps of a workspace's earlier runs (the real CLI run is
tests/e2e/test_demo_and_benchmark.py; the statistics: test_run_statistics.py; the report: test_benchmark_report.py)."""

from nnunet_pruning.app.benchmark import _other_scored_runs, _test_runs


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


class _Runs:
    """Runs that take 60 s each on a clock the test reads, but those scored before, which are read back at once."""

    def __init__(self, scored_before):
        self.before, self.now = scored_before, 0.0

    def scored(self, trainer, fold):
        return (trainer, fold) in self.before

    def test_run(self, trainer, fold, progress=None):
        if (trainer, fold) not in self.before:
            self.now += 60.0
        return {"trainer": trainer, "fold": fold, "test_dice": 0.8}


def test_each_run_says_how_far_and_how_long_is_left():
    pipeline, said = _Runs({("stock", "0"), ("stamp", "0")}), []
    runs = _test_runs(pipeline, ["stock", "stamp"], ["0", "1", "2"], said.append, clock=lambda: pipeline.now)
    assert [(r["trainer"], r["fold"]) for r in runs] == [("stock", "0"), ("stamp", "0"), ("stock", "1"),
                                                          ("stamp", "1"), ("stock", "2"), ("stamp", "2")]
    assert said == ["2 of the 6 runs scored before: reused",
                    "stock fold 0: test Dice 0.800 (run 1 of 6)",
                    "stamp fold 0: test Dice 0.800 (run 2 of 6)",
                    "stock fold 1: test Dice 0.800 (run 3 of 6, about 3 min left)",
                    "stamp fold 1: test Dice 0.800 (run 4 of 6, about 2 min left)",
                    "stock fold 2: test Dice 0.800 (run 5 of 6, about 1 min left)",
                    "stamp fold 2: test Dice 0.800 (run 6 of 6)"]
