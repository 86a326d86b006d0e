"""Benchmark run records made by hand, for the statistics and report tests."""


def hand_made_runs() -> list[dict]:
    """Three folds of stock and STAMP: test Dice, sizes, training time; STAMP missed its target in fold 2."""
    dice = {"stock": [0.80, 0.82, 0.78], "stamp": [0.79, 0.80, 0.76]}
    return [{"trainer": t, "fold": str(f), "test_dice": d, "params": 100 if t == "stock" else 20, "gflops": 2.0,
             "train_seconds": 60.0, "target_reached": None if t == "stock" else f != 2}
            for t, values in dice.items() for f, d in enumerate(values)]
