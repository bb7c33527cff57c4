"""Production operations: set-up, the endpoints file from the environment, retention, spaCy models."""
