# The two commands a new user needs: `make run` and `make test`.
BIN := .venv/bin

.PHONY: run test install train lint shell check-facts nlu-compare bench purge clean

run: install          ## Start the assistant (venv, pinned deps, training when needed, all processes)
	@scripts/run.sh

test: install         ## Every check: lint, unit tests, data validation, training, story tests, end-to-end
	@scripts/system_deps.sh
	@scripts/test.sh

install:              ## Create .venv with Python 3.10 and the pinned dependencies
	@scripts/bootstrap.sh

train: install        ## Train the model if the training data changed
	$(BIN)/rasa train

lint: install
	$(BIN)/ruff check actions channels scripts tests

check-facts: install  ## Validate the fact store and clinic settings after editing them
	$(BIN)/python -m actions.check_facts

shell: install        ## Chat in the terminal with the running assistant (make run first)
	$(BIN)/python -m scripts.endpoints --out var/run/shell-endpoints.yml
	$(BIN)/rasa shell --endpoints var/run/shell-endpoints.yml --port 5006

purge: install        ## Delete stored conversations idle for more than RETENTION_DAYS (default 30)
	$(BIN)/python -m scripts.retention

nlu-compare: install  ## Compare NLU pipelines on the held-out test set (writes docs/nlu-pipelines.md)
	$(BIN)/python scripts/compare_pipelines.py

bench: install        ## Benchmark config.yml against stock `rasa init` Rasa (writes docs/benchmarks.md; 10–16 min on 2 cores)
	$(BIN)/python -m scripts.bench

.PHONY: test-widget
test-widget: install  ## The website widget in a real browser (Chromium) against the real servers
	$(BIN)/pytest -q tests/test_web_channel.py tests/test_widget_browser.py -p no:cacheprovider

clean:
	rm -rf models/*.tar.gz results var/run .pytest_cache  # not var/data: it holds the conversations
