# The two commands a new user needs: `make run` and `make test`.
BIN := .venv/bin

.PHONY: run test install train lint shell check-facts nlu-compare clean

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
	$(BIN)/rasa shell --endpoints endpoints.yml --port 5006

nlu-compare: install  ## Compare NLU pipelines on the held-out test set (writes docs/nlu-pipelines.md)
	$(BIN)/python scripts/compare_pipelines.py

clean:
	rm -rf models/*.tar.gz results var .pytest_cache
