"""`make eval`: the evaluation sets end to end through the real servers (sets, run, score, report, plot)."""
