# The two commands a new user needs: `make run` and `make test`.
BIN := .venv/bin
PY_DIRS := clinic actions channels rasa_extensions console ops devtools tests
export RASA_TELEMETRY_ENABLED ?= false

.PHONY: run test install train lint shell check-facts nlu-compare bench purge clean

run: install          ## Start the assistant (venv, pinned deps, training when needed, all processes)
	@ops/run.sh

test: install         ## Every check: lint, unit tests, data validation, training, story tests, end-to-end
	@devtools/system_deps.sh
	@devtools/test.sh

install:              ## Create .venv with Python 3.10 and the pinned dependencies
	@ops/bootstrap.sh

train: install        ## Train the model if the training data changed (keeps the newest 3 models)
	$(BIN)/python -m ops.models

lint: install
	$(BIN)/ruff check $(PY_DIRS)

.PHONY: typecheck
typecheck: install    ## Type-check clinic, actions, channels and rasa_extensions (mypy; settings in pyproject.toml)
	$(BIN)/mypy clinic actions channels rasa_extensions console

check-facts: install  ## Validate the fact store and clinic settings after editing them
	$(BIN)/python -m clinic.check_facts

shell: install        ## Chat in the terminal with the running assistant (make run first)
	$(BIN)/python -m ops.endpoints --out var/run/shell-endpoints.yml
	$(BIN)/python -m rasa_extensions.launcher shell --endpoints var/run/shell-endpoints.yml --port 5006

purge: install        ## Delete stored conversations idle for more than RETENTION_DAYS (default 30)
	$(BIN)/python -m ops.retention

nlu-compare: install  ## Compare NLU pipelines on the held-out test set (writes docs/nlu-pipelines.md)
	$(BIN)/uv pip install --quiet --require-hashes --python $(BIN)/python -r requirements-nlu-compare.lock
	TF_CPP_MIN_LOG_LEVEL=3 PYTHONWARNINGS=ignore $(BIN)/python ops/spacy_models.py
	$(BIN)/python -m devtools.compare_pipelines

.PHONY: bench-console review
bench-console: install  ## The staff console's pages over 100,000 generated conversations, SQLite and PostgreSQL (docs/benchmarks.md)
	$(BIN)/python -m devtools.bench.console

review: install       ## List the staff console's training proposals waiting for a reviewer (docs/console.md)
	$(BIN)/python -m console.proposals list

.PHONY: eval
eval: install         ## Every evaluation set end to end over REST, dev and locked apart (writes docs/evaluation.md)
	$(BIN)/python -m devtools.eval

bench: install        ## Benchmark config.yml against stock `rasa init` Rasa (writes docs/benchmarks.md; 10–16 min on 2 cores)
	$(BIN)/python -m devtools.bench

.PHONY: test-widget
test-widget: install  ## The website widget in a real browser (Chromium) against the real servers
	$(BIN)/pytest -q tests/test_web_channel.py tests/test_widget_browser.py -p no:cacheprovider

clean:
	rm -rf models/*.tar.gz results var/run .pytest_cache  # not var/data: it holds the conversations
