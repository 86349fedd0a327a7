"""A re-run knows the outputs it made and with which settings: the same settings again are
"already done"; other settings are refused in one line without --overwrite and redone with it;
the report never claims settings its output was not made with."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from conftest import SAMPLE_IMAGE, run_cli

from veil.config import Settings
from veil.runners.batch import settings_digest


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("many", [False, True], ids=["one-photo", "folder-j2"])
def test_other_settings_refused_or_redone(tmp_path: Path, many: bool) -> None:
    if many:
        src = tmp_path / "in"
        src.mkdir()
        shutil.copy(SAMPLE_IMAGE, src / "a.png")
        shutil.copy(SAMPLE_IMAGE, src / "b.png")
        target, out, opts = src, tmp_path / "out", ["-j2"]
        made = out / "a.png"
    else:
        target, out, opts = SAMPLE_IMAGE, tmp_path / "a.png", ["-j1"]
        made = out
    run_cli(target, "-o", out, *opts, "--mask", "blur", "--preset", "fast", check=True)
    blurred = sha(made)
    # The same command: nothing redone, not an error.
    same = run_cli(target, "-o", out, *opts, "--mask", "blur", "--preset", "fast")
    assert same.returncode == 0 and "already done" in same.stderr, same.stderr
    assert sha(made) == blurred
    # Other settings without --overwrite: refused in one line, the output left as it was.
    refused = run_cli(target, "-o", out, *opts, "--mask", "solid", "--preset", "fast")
    assert refused.returncode == 1
    assert "made with other settings; use --overwrite" in refused.stderr
    assert "already done" not in refused.stderr and "Traceback" not in refused.stderr
    assert sha(made) == blurred
    # With --overwrite: done again with these settings, and the report says so truly.
    report = tmp_path / "r.json"
    redone = run_cli(target, "-o", out, *opts, "--mask", "solid", "--preset", "fast", "--overwrite", "--report", report)
    assert redone.returncode == 0, redone.stderr
    assert "already done" not in redone.stderr
    assert sha(made) != blurred
    doc = json.loads(report.read_text())
    assert doc["settings"]["mask"]["name"] == "solid" and doc["settings"]["mask"]["irreversible"]
    for f in doc["files"]:
        assert f["status"] == "ok" and not f.get("already_done")
        assert Path(f["output"]).is_file() and sha(Path(f["output"])) == f["output_sha256"]
    # And the solid output is now the one a re-run knows.
    again = run_cli(target, "-o", out, *opts, "--mask", "solid", "--preset", "fast")
    assert again.returncode == 0 and "already done" in again.stderr


def test_digest_follows_what_changes_the_output() -> None:
    base = settings_digest(Settings())
    assert settings_digest(Settings()) == base
    for changed in (
        Settings(mask="blur"),
        Settings(mask_color="white"),
        Settings(margin=0.5),
        Settings(classes=("faces",)),
        Settings(preset="fast"),
        Settings(allow_crop=True),
        Settings(keep_metadata=True),
        Settings(output_format="png"),
        Settings(audio="mute"),
        Settings(audio="mute", audio_ranges=((1.0, 2.0),)),
        Settings(keep_audio=False),
        Settings(lookahead_s=0.5),
    ):
        assert settings_digest(changed) != base, changed
    # What does not change an output's bytes does not change the digest.
    assert settings_digest(Settings(overwrite=True, report=True)) == base
