"""`make bench`: our configuration against stock Rasa, measured in one run (docs/benchmarks.md)."""
