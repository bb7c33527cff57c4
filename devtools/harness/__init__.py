"""Real servers for tests and benchmarks: Rasa and the action server, PostgreSQL, Redis, a fake Bot API."""
