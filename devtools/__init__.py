"""Developer tools: the test runner, the benchmark, the pipeline comparison, and the server harness."""
