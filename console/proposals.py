"""Training proposals from the console, and the reviewer's step that lets `make train` use them.

Staff propose, from a group of unanswered questions, either "these are examples of topic X"
or "a new topic is needed". Proposals go to REVIEW_DIR/proposals.yml (default
data/review/), which Rasa does not read as training data. Nothing a patient wrote is
trained on until a reviewer accepts it:

    python -m console.proposals list                  # what is waiting (make review)
    python -m console.proposals accept ID [--by NAME] # an example proposal: its questions become training examples
    python -m console.proposals reject ID [--by NAME]

Accepting an example proposal (re)writes REVIEW_DIR/accepted.yml, in Rasa's NLU format,
from every accepted proposal; `rasa train` (make train, make run) reads every training file
under data/, so the next training includes them; there is no automatic retraining.
Accepting "new topic needed" only records the decision: a new topic needs an intent in
domain.yml, examples in data/nlu/ and a reviewed fact in data/facts/, written by people.
Phone numbers and e-mail addresses are masked before a question is proposed; the reviewer
edits proposals.yml (the `examples` of a proposal) to remove anything else personal first.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import re
import secrets
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence

import yaml

from clinic.fact_store import domain_intents
from clinic.settings import PROJECT_DIR, ConfigError, Settings
from console.privacy import mask

PROPOSALS = "proposals.yml"
ACCEPTED = "accepted.yml"
LOCK = ".proposals.lock"
ACTIONS = ("example", "new_topic")
STATUSES = ("proposed", "accepted", "rejected")
NLU_DIR = PROJECT_DIR / "data" / "nlu"
MAX_EXAMPLES = 50
HEADER = """\
# Training proposals from the staff console (console/proposals.py). Rasa does not train on this file.
# A reviewer accepts or rejects each one:  python -m console.proposals list | accept ID | reject ID
# Accepted examples are written to accepted.yml beside this file, which `make train` reads. Before
# accepting, edit a proposal's examples to remove anything personal. See docs/console.md.
"""
ACCEPTED_HEADER = """\
# Written by `python -m console.proposals accept`: examples a reviewer accepted from the staff
# console's proposals (proposals.yml beside this file). Do not edit: edit proposals.yml and accept again.
"""


class ProposalError(ValueError):
    """A proposal that cannot be made or accepted, with the reason."""


@dataclass
class Proposal:
    id: str
    action: str  # example | new_topic
    examples: List[str]
    proposed_by: str
    proposed_on: str
    intent: Optional[str] = None  # the topic, for an example proposal
    note: str = ""
    status: str = "proposed"
    reviewed_by: Optional[str] = None
    reviewed_on: Optional[str] = None

    def as_dict(self) -> Dict[str, Any]:
        return asdict(self)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Review:
    """The review folder: proposals.yml, accepted.yml, and a lock for writers (console and reviewer)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def from_settings(cls, settings: Settings) -> Review:
        return cls(settings.review_dir)

    @property
    def proposals_path(self) -> Path:
        return self.folder / PROPOSALS

    @property
    def accepted_path(self) -> Path:
        return self.folder / ACCEPTED

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / LOCK, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def load(self) -> List[Proposal]:
        if not self.proposals_path.exists():
            return []
        raw = yaml.safe_load(self.proposals_path.read_text(encoding="utf-8")) or {}
        items = raw.get("proposals") or []
        known = set(Proposal.__dataclass_fields__)
        proposals = []
        for item in items:
            if not isinstance(item, dict) or "id" not in item:
                raise ProposalError(f"{self.proposals_path}: every proposal needs an id")
            values = {k: v for k, v in item.items() if k in known}
            values["id"] = str(values["id"])
            values["examples"] = [str(e) for e in values.get("examples") or []]
            proposals.append(Proposal(**values))
        return proposals

    def _save(self, proposals: Sequence[Proposal]) -> None:
        text = HEADER + yaml.safe_dump({"proposals": [p.as_dict() for p in proposals]}, sort_keys=False,
                                       allow_unicode=True, width=100)
        temporary = self.proposals_path.with_suffix(".tmp")
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(self.proposals_path)

    def propose(self, action: str, examples: Sequence[str], by: str, intent: Optional[str] = None,
                note: str = "", intents: Optional[Sequence[str]] = None) -> Proposal:
        if action not in ACTIONS:
            raise ProposalError(f"unknown proposal {action!r}")
        if action == "example" and (not intent or intent not in (intents or domain_intents())):
            raise ProposalError("choose the topic these questions are examples of")
        cleaned = list(dict.fromkeys(" ".join(mask(e).split()) for e in examples if e.strip()))[:MAX_EXAMPLES]
        if not cleaned:
            raise ProposalError("choose at least one question")
        proposal = Proposal(id=f"{dt.date.today():%Y%m%d}-{secrets.token_hex(3)}", action=action, examples=cleaned,
                            proposed_by=by, proposed_on=_now(), intent=intent if action == "example" else None,
                            note=note.strip()[:500])
        with self._locked():
            proposals = self.load()
            proposals.append(proposal)
            self._save(proposals)
        return proposal

    def decide(self, proposal_id: str, status: str, by: str) -> Proposal:
        if status not in ("accepted", "rejected"):
            raise ProposalError(f"unknown decision {status!r}")
        with self._locked():
            proposals = self.load()
            proposal = next((p for p in proposals if p.id == proposal_id), None)
            if proposal is None:
                raise ProposalError(f"no proposal {proposal_id} in {self.proposals_path}")
            if status == "accepted" and proposal.action == "example":
                check_examples(proposal)
            proposal.status, proposal.reviewed_by, proposal.reviewed_on = status, by, _now()
            self._save(proposals)
            self._write_accepted(proposals)
        return proposal

    def _write_accepted(self, proposals: Sequence[Proposal]) -> None:
        by_intent: Dict[str, List[str]] = {}
        for proposal in proposals:
            if proposal.status == "accepted" and proposal.action == "example" and proposal.intent:
                bucket = by_intent.setdefault(proposal.intent, [])
                bucket.extend(e for e in proposal.examples if e not in bucket)
        if not by_intent:
            self.accepted_path.unlink(missing_ok=True)  # an empty training file would only draw warnings
            return
        lines = [ACCEPTED_HEADER, 'version: "3.1"', "nlu:"]
        for intent in sorted(by_intent):
            lines += [f"- intent: {intent}", "  examples: |"]
            lines += [f"    - {' '.join(example.split())}" for example in by_intent[intent]]
        self.accepted_path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def training_examples(folder: Path = NLU_DIR) -> Dict[str, str]:
    """Every example already in the training data (lower-cased) -> its intent."""
    examples: Dict[str, str] = {}
    for path in sorted(folder.glob("*.yml")):
        for block in (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("nlu") or []:
            if isinstance(block, dict) and "intent" in block:
                for line in str(block.get("examples") or "").splitlines():
                    text = re.sub(r"^\s*-\s*", "", line).strip()
                    if text:
                        examples[" ".join(text.lower().split())] = str(block["intent"])
    return examples


def check_examples(proposal: Proposal, existing: Optional[Dict[str, str]] = None) -> None:
    """Refuses an example that the training data already has under another topic (Rasa's validator would too)."""
    existing = training_examples() if existing is None else existing
    clashes = [e for e in proposal.examples
               if existing.get(" ".join(e.lower().split()), proposal.intent) != proposal.intent]
    if clashes:
        raise ProposalError(f"proposal {proposal.id}: already training examples of another topic: "
                            + "; ".join(f"'{c}' ({existing[' '.join(c.lower().split())]})" for c in clashes)
                            + ". Edit its examples in proposals.yml, or reject it.")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Review the staff console's training proposals")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="proposals waiting for a decision")
    for name in ("accept", "reject"):
        command = commands.add_parser(name, help=f"{name} a proposal")
        command.add_argument("id")
        command.add_argument("--by", default="reviewer", help="who decides (kept in proposals.yml)")
    args = parser.parse_args(argv)
    try:
        review = Review.from_settings(Settings.from_env())
        if args.command == "list":
            waiting = [p for p in review.load() if p.status == "proposed"]
            if not waiting:
                print(f"No proposal is waiting ({review.proposals_path}).")
            for p in waiting:
                what = f"examples of {p.intent}" if p.action == "example" else "a new topic"
                note = f": {p.note}" if p.note else ""
                print(f"{p.id}  {what}, proposed by {p.proposed_by} on {p.proposed_on}{note}")
                for example in p.examples:
                    print(f"    - {example}")
            return 0
        decided = review.decide(args.id, "accepted" if args.command == "accept" else "rejected", args.by)
    except (ConfigError, ProposalError, yaml.YAMLError) as exc:
        print(f"Cannot do that: {exc}", file=sys.stderr)
        return 2
    print(f"{decided.id}: {decided.status}.")
    if decided.status == "accepted" and decided.action == "example":
        print(f"Its examples are in {review.accepted_path}; `make train` includes them in the next model.")
    elif decided.status == "accepted":
        print("Recorded. A new topic needs an intent in domain.yml, examples in data/nlu/ and a reviewed fact in "
              "data/facts/ (see README, 'For clinic staff: editing the answers').")
    return 0


if __name__ == "__main__":
    sys.exit(main())
