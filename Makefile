# The book's two set-up commands are `make book` and `make test`; each first installs what it needs
# into .venv (once; again when requirements.txt or pyproject.toml change).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
D2L    := d2l==1.0.3
# Torch's threads, fixed so that chapter outputs do not depend on the machine's core count.
export OMP_NUM_THREADS := 2
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: book test unit chapters sync sync-check build clean

book: $(VENV)/.installed
	$(VENV)/bin/jupyter-book build . -W --keep-going
	@echo "The book is at _build/html/index.html"

test: $(VENV)/.installed sync-check unit chapters build

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -r requirements.txt
	# d2l 1.0.3 pins 2023 versions (numpy 1.23.5 has no wheels for Python 3.12): install it
	# without them; requirements.txt has what it really imports.
	$(PY) -m pip install --no-deps $(D2L)
	$(PY) -m pip install --no-deps -e .
	$(PY) -c "from d2l import torch as d2l; import dropkit; print('environment ready')"
	touch $@

sync: $(VENV)/.installed
	$(PY) tools/sync.py

sync-check: $(VENV)/.installed
	$(PY) tools/sync.py --check

unit: $(VENV)/.installed
	$(PY) -m pytest tests

chapters: $(VENV)/.installed
	$(PY) -m pytest --nbval chapters --nbval-sanitize-with tests/nbval_sanitize.cfg

build: $(VENV)/.installed
	$(VENV)/bin/jupyter-book build . -W --keep-going

clean:
	rm -rf _build
