"""pruning_log.json read in one place: a run that stopped short is never reported as "target reached"."""

from nnunet_pruning.adapter.pruning_logs import describe_status, target_status


def _log(kept, keep=0.01, **extra):
    return {"schedule": {"target_metric": "latency", "keep_fraction": keep},
            "steps": [{"latency_fraction": kept, "latency": 0.002}], "latency": {"device": "CPU, 1 thread"}, **extra}


def test_stopped_short_is_not_reached_with_the_figure_and_the_reason():
    """Issue 23.2: RandomLargestLatency_keep1 collapsed to width 1 at 20.5% of the time."""
    status = target_status(_log(0.205, target_reached=False, outcome="minimum_widths"))
    assert not status["target_reached"]
    text = describe_status(status)
    assert text.startswith("keeps 20.5% of the latency, target <= 1%: NOT reached, stopped short: every layer at its "
                           "minimum width; measured latency 2.0 ms")


def test_logs_from_before_outcomes_say_reached_only_at_the_target():
    assert not target_status(_log(0.205, target_reached=True))["target_reached"]  # the old "finished"
    assert "NOT reached, stopped short: nothing left to cut" in describe_status(target_status(_log(0.205,
                                                                                               target_reached=True)))
    assert target_status(_log(0.009, target_reached=True))["target_reached"]


def test_still_pruning_and_out_of_epochs():
    assert "NOT reached, still pruning" in describe_status(target_status(_log(0.5, target_reached=False, outcome=None)))
    assert "NOT reached, stopped short: out of epochs" in describe_status(target_status(_log(0.5, target_reached=False,
                                                                                 outcome="out_of_epochs")))


def test_a_run_stopped_at_a_full_resolution_floor_names_it():
    """STAMPLatency_fullres24 on the fine task stopped at 66% of the time: the floor held the rest."""
    log = _log(0.664, keep=0.5, target_reached=False, outcome="nothing_left_to_cut")
    log["schedule"].update(min_width=1, min_width_full_resolution=24)
    assert describe_status(target_status(log)).startswith(
        "keeps 66.4% of the latency, target <= 50%: NOT reached, stopped short: nothing left to cut that measured "
        "faster or could go (full-resolution layers held at >= 24 channels)")
    log["schedule"].update(min_width=24)  # the floor is no floor above min_width
    assert "held at" not in describe_status(target_status(log))
    log["outcome"] = "out_of_epochs"
    log["schedule"].update(min_width=1)
    assert "held at" not in describe_status(target_status(log))


def test_the_steps_the_run_took_are_named():
    """A schedule says what it planned; the log what the run did (a latency step may cut more or less)."""
    log = {"schedule": {"target_metric": "params", "keep_fraction": 0.2}, "target_reached": True,
           "outcome": "reached", "steps": [{"epoch": e, "params_fraction": f} for e, f in ((0, 0.6), (1, 0.2))]}
    assert target_status(log)["step_epochs"] == [0, 1]
    assert describe_status(target_status(log)) == "keeps 20.0% of the params, target <= 20%: reached (2 steps, after " \
                                                  "epochs 0, 1)"
    log["steps"] = [{"epoch": e, "params_fraction": 0.2} for e in range(49, 200, 10)]
    assert describe_status(target_status(log)).endswith("(16 steps, after epochs 49, 59, ... 199)")
    log["steps"] = []
    assert describe_status(target_status(log)).startswith("keeps 100.0% of the params, target <= 20%: NOT reached")
