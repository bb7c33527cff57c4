"""`python -m clinic.check_facts`: validate the fact store before serving or after editing it."""

from __future__ import annotations

import sys
from collections import Counter

from clinic import callbacks, languages
from clinic.fact_store import FactStore, FactStoreError
from clinic.facts_schema import PLACEHOLDER_RE
from clinic.settings import ConfigError
from clinic.settings import current as current_settings


def main() -> int:
    try:
        snapshot = FactStore.from_settings(current_settings()).current()
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    except FactStoreError as exc:
        print(f"Fact store error: {exc}", file=sys.stderr)
        return 1
    problems = callbacks.missing_fields(snapshot)
    if problems:
        print("Fact store error: callback facts: " + "; ".join(f"{k}: {v}" for k, v in problems.items()),
              file=sys.stderr)
        return 1
    try:
        spoken = languages.check()
        missing = sorted({key for language in languages.languages().values()
                          for template in (language.notice, language.urgent)
                          for key in PLACEHOLDER_RE.findall(template) if key not in snapshot.settings})
        if missing:
            raise languages.LanguagesError(f"{languages.LANGUAGES_FILE}: placeholders not in the clinic's settings: "
                                           f"{', '.join(missing)}")
    except languages.LanguagesError as exc:
        print(f"Languages error: {exc}", file=sys.stderr)
        return 1
    statuses = Counter(f.status for f in snapshot.facts.values())
    print(f"Fact store OK: {len(snapshot.facts)} facts "
          f"({statuses['approved']} approved, {statuses['needs_clinician_review']} awaiting clinician review), "
          f"{len(snapshot.warning_signs)} warning signs; notices in {', '.join(spoken) or 'no other language'}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
