"""Every benchmark starts as the command its JSON records (``python scripts/<file>.py``, app/provenance.py), from
any folder: a script that imports a sibling as ``scripts.*`` must find it without ``python -m``."""

import os
import subprocess
import sys

from scripts.__main__ import BENCHMARKS

SCRIPTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "scripts")


def test_every_benchmark_runs_as_python_scripts_file(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    started = {module: subprocess.Popen([sys.executable, os.path.join(SCRIPTS, f"{module}.py"), "--help"],
                                        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
               for module in BENCHMARKS.values()}
    failed = {}
    for module, process in started.items():
        out, err = process.communicate(timeout=300)
        if process.returncode != 0 or "usage:" not in out:
            failed[module] = (err.strip().splitlines() or [f"exit {process.returncode}"])[-1]
    assert failed == {}
