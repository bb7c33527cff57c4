"""`make bench`: our configuration against stock Rasa, measured in one run (docs/benchmarks.md).

One module a job: configs (what is compared), machine (the host and its load), training, nlu,
serving (start-up, REST load, memory), report (figures, targets, the doc), chart; __main__ runs them.
"""
