"""Damaged files end cleanly: a seeded mutation fuzz over the samples, and the recorded cases.

Each case must end within a time limit in a clean success or one `veil: error:` line, with
no traceback and nothing left behind (rules in tests/fuzzing.py). `make fuzz` runs 10,000+.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fuzzing import REGRESSIONS, check_one, run

# A few hundred cases: about 90 s on 2 cores (two workers).
CASES = int(os.environ.get("VEIL_FUZZ_CASES", "250"))


@pytest.mark.parametrize("path", sorted(REGRESSIONS.iterdir()), ids=lambda p: p.name)
def test_recorded_cases_end_cleanly(path: Path) -> None:
    ok, detail = check_one(path)
    assert ok, f"{path.name}: {detail}"


def test_seeded_mutation_fuzz(tmp_path: Path) -> None:
    results, failed = run(CASES, seed=1, workers=2, directory=tmp_path / "seeds")
    assert len(results) == CASES
    problems = [f"{r.description}: {r.detail}" for r in results if not r.ok]
    assert not problems, "\n".join(problems[:20])
    # Both outcomes occur: the mutations reach past the parsers' first checks.
    assert any(r.detail == "ok" for r in results) and any(r.detail.startswith("error") for r in results)
