# One entry point for a fresh machine: `make demo` runs a real search, `make test` runs the tests.
VENV ?= .venv
PY := $(VENV)/bin/python
NAS := $(VENV)/bin/nas

.PHONY: install demo test test-all lint bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# the CPU wheel first: a bare torch requirement would pull a multi-GB CUDA build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(NAS) search search_spaces.convnet:space --dataset digits --budget 20 --epochs 8 \
		--objective accuracy:max --study demo --db sqlite:///nas.db --seed 0 --resume
	$(NAS) best demo --db sqlite:///nas.db

test: install
	$(PY) -m pytest -q -p no:cacheprovider

test-all: install
	$(PY) -m pytest -q -m '' -p no:cacheprovider

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) nas.db *.egg-info
