"""The `rasa` command, started faster: same arguments (`python -m scripts.rasa_cli run --model ...`).

Our NLU pipeline's LogisticRegressionClassifier stores its model with skops.
When skops is imported it looks up the module of every numpy and scipy ufunc
by scanning all of sys.modules. Rasa imports it while loading the model, after
TensorFlow, when about 5,600 modules are loaded, and the scan then took 5–13 s
of every start of the Rasa server (profile in docs/benchmarks.md). Imported
before Rasa, skops scans a few hundred modules and costs well under a second.
Nothing else changes: this then hands over to Rasa's own command line.
"""

from __future__ import annotations


def main() -> None:
    import skops.io  # noqa: F401 - before Rasa pulls in TensorFlow: see above
    from rasa.__main__ import main as rasa_main

    rasa_main()


if __name__ == "__main__":
    main()
