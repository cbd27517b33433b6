# The book's two set-up commands are `make book` and `make test`; each first installs what it needs
# into .venv (once; again when requirements.txt or pyproject.toml change).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
D2L    := d2l==1.0.3
# MathJax, served with the book so that its math renders offline (_config.yml: mathjax_path).
MATHJAX := mathjax@3.2.2
MATHJAX_DIR := _vendor/mathjax
# Torch's threads, fixed so that chapter outputs do not depend on the machine's core count.
export OMP_NUM_THREADS := 2
export PYDEVD_DISABLE_FILE_VALIDATION := 1
# The chapters are checked twice: as this CPU runs them, and again with ATen, MKL and oneDNN held to
# their baseline kernels, which round differently (tests/test_dispatch.py checks that they do here).
# Stored outputs must pass both: exact where portable, through their claim checks where not.
CPU_DISPATCH_2 := ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE ONEDNN_MAX_CPU_ISA=SSE41
NBVAL := -m pytest --nbval chapters --nbval-sanitize-with tests/nbval_sanitize.cfg
# The chapters whose claims compare timings (see `chapters`).
TIMED := chapters/memory_speed.ipynb chapters/sequence_dropout.ipynb
NBVAL_TIMED := -m pytest --nbval $(TIMED) --nbval-sanitize-with tests/nbval_sanitize.cfg
NB ?= chapters/*.ipynb
# The oldest torch that pyproject.toml declares, with its torchvision: `make test-floor`
# runs the unit tests and chapter 1 under it, in a second environment.
TORCH_FLOOR := torch==2.9.1 torchvision==0.24.1
VENV_FLOOR ?= .venv-floor
PY_FLOOR := $(VENV_FLOOR)/bin/python

.PHONY: pdf pdf-test pdf-packages book test test-floor lint i18n-check i18n-update unit chapters chapters-native chapters-dispatch2 chapters-timed execute cells replicate sync sync-check build site browser clean

book: build
	@echo "The book is at _build/html/index.html, its Chinese edition at _build/html/zh/index.html"

# The chapters' two runs side by side, with the book's build (which executes nothing) in the
# first slot that frees; then the chapters that time code, alone; then the built site.
test: $(VENV)/.installed sync-check lint i18n-check unit cells
	$(MAKE) --no-print-directory -j2 --output-sync=target chapters-native chapters-dispatch2 build
	$(MAKE) --no-print-directory chapters-timed
	$(MAKE) --no-print-directory site

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

# requirements.txt with the floor's torch and torchvision in place of the pinned ones.
$(VENV_FLOOR)/.installed: requirements.txt pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV_FLOOR)
	$(PY_FLOOR) -m pip install --upgrade pip
	grep -v -e '^torch===' -e '^torchvision==' requirements.txt > $(VENV_FLOOR)/requirements.txt
	$(PY_FLOOR) -m pip install -r $(VENV_FLOOR)/requirements.txt $(TORCH_FLOOR)
	$(PY_FLOOR) -m pip install --no-deps $(D2L)
	$(PY_FLOOR) -m pip install --no-deps -e .
	$(PY_FLOOR) -c "import torch, dropkit; print('floor environment ready: torch', torch.__version__)"
	touch $@

# The unit tests and chapter 1 (its stored outputs, exactly) under the floor's torch.
test-floor: $(VENV_FLOOR)/.installed
	$(PY_FLOOR) -m pytest tests
	$(PY_FLOOR) -m pytest --nbval chapters/dropout_from_scratch.ipynb --nbval-sanitize-with tests/nbval_sanitize.cfg

sync: $(VENV)/.installed
	$(PY) tools/sync.py

sync-check: $(VENV)/.installed
	$(PY) tools/sync.py --check

# ruff (format and lint, 88 columns; chapters included), then the workflows: zizmor's security
# audit and GitHub's workflow schema. Chapter outputs wider than 88 fail in `make unit`.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/zizmor --offline --no-progress .github/workflows
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

unit: $(VENV)/.installed
	$(PY) -m pytest tests

# Both runs against the same stored outputs, side by side (the chapters use one or two threads
# each); each run's log is printed whole when it ends. The chapters that time code run after
# them, alone, as this CPU runs them and then under CPU_DISPATCH_2: their claims compare
# timings round by round, and a second process on the same two cores would be part of what
# they time.
chapters: cells
	$(MAKE) --no-print-directory -j2 --output-sync=target chapters-native chapters-dispatch2
	$(MAKE) --no-print-directory chapters-timed

chapters-native: $(VENV)/.installed
	$(PY) $(NBVAL) $(addprefix --ignore=,$(TIMED))

chapters-dispatch2: $(VENV)/.installed
	env $(CPU_DISPATCH_2) $(PY) $(NBVAL) $(addprefix --ignore=,$(TIMED))

chapters-timed: $(VENV)/.installed
	$(PY) $(NBVAL_TIMED)
	env $(CPU_DISPATCH_2) $(PY) $(NBVAL_TIMED)

# How many outputs are compared exactly, and how many are float output with a claim check.
cells: $(VENV)/.installed
	$(PY) tools/cells.py

# Every verdict of the chapters that take their seeds from claims.seeds, re-run on two fresh
# seed sets (100.. and 200..): which verdicts hold on both, one or none. Not in `make test`:
# it executes those chapters twice more (about half an hour on 2 cores). The table goes to
# _build/replicate.md (and the README). One chapter: make replicate NB=chapters/NAME.ipynb
replicate: $(VENV)/.installed
	$(PY) tools/replicate.py $(filter-out chapters/*.ipynb,$(NB))

# Re-execute chapters and store their outputs: make execute NB=chapters/NAME.ipynb
execute: $(VENV)/.installed
	$(PY) tools/execute.py $(NB)

# Both editions, warnings as errors: English into _build/html, then the Chinese one (the same
# pages with locales/zh_CN's translations) into _build/html/zh.
build: $(VENV)/.installed $(MATHJAX_DIR)/.installed
	$(VENV)/bin/jupyter-book build . -W --keep-going
	$(PY) tools/i18n.py config
	$(VENV)/bin/jupyter-book build . --config _build/_config.zh.yml --path-output _build/zh -W --keep-going
	rm -rf _build/html/zh
	cp -R _build/zh/_build/html _build/html/zh
	$(COPY_PDFS)

# The book as a PDF, both editions from the same sources: Jupyter Book's LaTeX builder,
# XeLaTeX (_ext/pdf_book.py: class, fonts, page), warnings as errors. Into the site too when
# it is built (each page links to its edition's PDF), as the publish workflow does.
PDF_EN := _build/latex/dropkit.pdf
PDF_ZH := _build/latex/zh/dropkit-zh.pdf
COPY_PDFS := if [ -f $(PDF_EN) ] && [ -d _build/html ]; then cp $(PDF_EN) _build/html/; fi; \
	if [ -f $(PDF_ZH) ] && [ -d _build/html/zh ]; then cp $(PDF_ZH) _build/html/zh/; fi
export LATEXMKOPTS := -interaction=nonstopmode -halt-on-error -file-line-error

pdf: $(VENV)/.installed pdf-packages
	rm -f $(PDF_EN) $(PDF_ZH)
	$(VENV)/bin/jupyter-book build . --builder pdflatex -W --keep-going
	$(PY) tools/i18n.py config
	$(VENV)/bin/jupyter-book build . --config _build/_config.zh.yml --path-output _build/zh --builder pdflatex -W --keep-going
	mkdir -p $(dir $(PDF_ZH))
	cp _build/zh/_build/latex/$(notdir $(PDF_ZH)) $(PDF_ZH)
	$(COPY_PDFS)
	@echo "The book as a PDF: $(PDF_EN), its Chinese edition: $(PDF_ZH)"

# The PDFs as a reader gets them (tests/pdf, run by the workflow's pdf job; not in `make test`,
# which would pass the CI limit): chapters, formulas, glued numbers, links, fonts, and a few
# pages as PNG in _build/pdf-pages to look at.
pdf-test: pdf
	$(PY) -m pytest tests/pdf

# TeX Live's XeLaTeX with xeCJK, the fonts the PDF names and poppler's pdfinfo/pdftotext/
# pdftoppm for its tests (Debian's packages): installed when missing if we are root with
# apt-get; otherwise say how.
pdf-packages:
	@missing=""; \
	command -v xelatex >/dev/null 2>&1 || missing="$$missing texlive-xetex"; \
	command -v latexmk >/dev/null 2>&1 || missing="$$missing latexmk"; \
	command -v pdftoppm >/dev/null 2>&1 || missing="$$missing poppler-utils"; \
	for f in unicode-math.sty:texlive-latex-recommended changepage.sty:texlive-latex-extra \
		pict2e.sty:texlive-pictures pzdr.tfm:texlive-fonts-recommended \
		xeCJK.sty:texlive-lang-chinese; do \
		kpsewhich $${f%%:*} >/dev/null 2>&1 || missing="$$missing $${f#*:}"; \
	done; \
	for f in "FreeSerif:fonts-freefont-otf" "DejaVu Sans Mono:fonts-dejavu-core" \
		"Latin Modern Math:fonts-lmodern" "Noto Serif CJK SC:fonts-noto-cjk" \
		"AR PL KaitiM GB:fonts-arphic-gkai00mp"; do \
		fc-list "$${f%%:*}" 2>/dev/null | grep -q . || missing="$$missing $${f#*:}"; \
	done; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing for the PDF (Debian):$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else \
		echo "Missing for the PDF:$$missing. Install them with"; \
		echo "  sudo apt-get install --no-install-recommends$$missing   (Debian/Ubuntu)"; \
		exit 1; \
	fi

# Every message of the English text has a Chinese translation that is not fuzzy (tools/i18n.py).
i18n-check: $(VENV)/.installed
	$(PY) tools/i18n.py check

# After changing English prose: add the new messages to locales/zh_CN, then translate them.
i18n-update: $(VENV)/.installed
	$(PY) tools/i18n.py update

# The built book as readers get it (tests/site; `pytest tests` does not collect them, see
# pyproject.toml's norecursedirs): links, Colab links, figures, math and exercises in _build/html,
# every page in headless Chromium, and the Colab set-up cell run in a fresh virtual environment.
site: $(VENV)/.installed browser
	$(PY) -m pytest tests/site
	DROPKIT_SITE_LANG=zh $(PY) -m pytest tests/site --deselect tests/site/test_colab.py

# MathJax from the npm registry, copied into _vendor (git-ignored; html_static_path) so that Sphinx serves it with the
# book. Only what tex-mml-chtml.js loads is copied: the component, its fonts and lazy extensions.
$(MATHJAX_DIR)/.installed: Makefile
	@command -v npm >/dev/null 2>&1 || { echo "npm is needed to serve MathJax with the book: install Node.js (Debian: apt-get install npm; macOS: brew install node)"; exit 1; }
	rm -rf $(MATHJAX_DIR) .cache/npm
	npm install --prefix .cache/npm --no-save --no-audit --no-fund --loglevel=error $(MATHJAX)
	mkdir -p $(MATHJAX_DIR)
	cd .cache/npm/node_modules/mathjax && cp -R LICENSE es5/tex-mml-chtml.js es5/input es5/output es5/a11y es5/ui es5/adaptors es5/sre $(CURDIR)/$(MATHJAX_DIR)/
	touch $@

# Debian's Chromium for the browser tests, and a CJK font (Noto) for the Chinese pages'
# screenshots: installed when missing if we are root with apt-get; otherwise say how (the
# tests skip without Chromium, except under CI=true, where they fail).
browser:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing="chromium"; \
	fc-list :lang=zh 2>/dev/null | grep -q . || missing="$$missing fonts-noto-cjk"; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing for the browser tests (Debian):$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else \
		echo "Missing for the browser tests: $$missing (the tests skip without Chromium, fail under"; \
		echo "CI=true; without a CJK font the Chinese screenshots show boxes). Install them with"; \
		echo "  sudo apt-get install --no-install-recommends $$missing   (Debian/Ubuntu)"; \
	fi

clean:
	rm -rf _build $(MATHJAX_DIR) .cache/npm
