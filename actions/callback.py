"""The callback form's actions: a thin adapter between Rasa's form and clinic/callbacks.py.

- validate_callback_form checks each answer (warning signs first, then "cancel", then the step's
  own check) and stops the form by setting `requested_slot` to None with every slot emptied;
- action_ask_callback_<slot> asks for a slot (on Telegram, the phone question also offers
  Telegram's "share my phone number" keyboard);
- action_submit_callback runs when the form ends: it stores the request (the slot
  `callback_request`) only with the patient's consent, and empties the form's slots;
- action_stop_callback ends the form when the patient asks to delete the conversation.
Every message carries the turn's outcome as metadata (`clinic`), as action_answer's do.
"""

from __future__ import annotations

import datetime as dt
import logging
from abc import ABC, abstractmethod
from typing import Any, Dict, List, Optional, Sequence

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from clinic import callbacks
from clinic.fact_store import Snapshot, default_store
from clinic.replies import Message, ranking_from
from clinic.settings import current as current_settings
from clinic.urgent import urgent_custom

logger = logging.getLogger(__name__)

REQUESTED_SLOT = "requested_slot"


def _say(dispatcher: CollectingDispatcher, messages: Sequence[Message], kind: str, facts: Sequence[str],
         reason: str) -> None:
    outcome = {"kind": kind, "facts": list(facts), "reason": reason}
    for message in messages:
        dispatcher.utter_message(text=message.text, buttons=message.button_dicts() or None, clinic=outcome)


def _latest_user_metadata(tracker: Tracker) -> Dict[str, Any]:
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            return event.get("metadata") or {}
    return {}


def _slots(tracker: Tracker) -> Dict[str, Any]:
    return {slot: tracker.get_slot(slot) for slot in callbacks.SLOTS}


class ValidateCallbackForm(FormValidationAction):
    def name(self) -> str:
        return "validate_callback_form"

    def _check(self, slot: str, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Dict[str, Any]:
        snapshot = default_store().current()
        ranking = ranking_from((tracker.latest_message or {}).get("intent_ranking") or [])
        step = callbacks.check_answer(slot, str(value or ""), snapshot, ranking)
        reason = step.stop or ("accepted" if step.value else "asked again")
        _say(dispatcher, step.messages, step.kind, step.facts, reason)
        if step.stop == "urgent":
            dispatcher.utter_message(json_message=urgent_custom(snapshot),
                                     clinic={"kind": "urgent", "facts": list(step.facts), "reason": "callback form"})
        if step.stop:
            logger.info("callback form stopped: %s", step.stop)
            return {**callbacks.cleared(), REQUESTED_SLOT: None}
        return {slot: step.value}

    def validate_callback_name(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                               domain: Dict[str, Any]) -> Dict[str, Any]:
        return self._check(callbacks.NAME, value, dispatcher, tracker)

    def validate_callback_phone(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                domain: Dict[str, Any]) -> Dict[str, Any]:
        return self._check(callbacks.PHONE, value, dispatcher, tracker)

    def validate_callback_time(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                               domain: Dict[str, Any]) -> Dict[str, Any]:
        return self._check(callbacks.TIME, value, dispatcher, tracker)

    def validate_callback_consent(self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
                                  domain: Dict[str, Any]) -> Dict[str, Any]:
        return self._check(callbacks.CONSENT, value, dispatcher, tracker)


class AskCallbackSlot(Action, ABC):
    """action_ask_callback_<slot>: the question, from the fact store."""

    @property
    @abstractmethod
    def slot(self) -> str:
        """The slot asked for."""

    def name(self) -> str:
        return f"action_ask_{self.slot}"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[str, Any]) -> List[Dict[str, Any]]:
        snapshot = default_store().current()
        question = callbacks.ask(self.slot, snapshot, _slots(tracker), current_settings().retention_days)
        keyboard = self.keyboard(snapshot, tracker)
        outcome = {"kind": callbacks.KIND, "facts": [callbacks.ASK[self.slot]], "reason": f"asks {self.slot}"}
        if keyboard:  # Telegram: a reply keyboard (share my number, cancel) instead of the inline Cancel button
            text = f"{question.text} {callbacks.fill(snapshot, callbacks.SHARE_PHONE)}"
            dispatcher.utter_message(text=text, json_message={callbacks.TELEGRAM_KEYBOARD: keyboard}, clinic=outcome)
        else:
            dispatcher.utter_message(text=question.text, buttons=question.button_dicts(), clinic=outcome)
        return []

    def keyboard(self, snapshot: Snapshot, tracker: Tracker) -> Optional[Dict[str, str]]:
        return None


class AskCallbackName(AskCallbackSlot):
    slot = callbacks.NAME


class AskCallbackPhone(AskCallbackSlot):
    slot = callbacks.PHONE

    def keyboard(self, snapshot: Snapshot, tracker: Tracker) -> Optional[Dict[str, str]]:
        """Telegram offers "share my phone number" in private chats only."""
        telegram = _latest_user_metadata(tracker).get("telegram") or {}
        if tracker.get_latest_input_channel() == "telegram" and telegram.get("chat_type") == "private":
            return callbacks.share_phone_keyboard(snapshot)
        return None


class AskCallbackTime(AskCallbackSlot):
    slot = callbacks.TIME


class AskCallbackConsent(AskCallbackSlot):
    slot = callbacks.CONSENT


class ActionSubmitCallback(Action):
    def name(self) -> str:
        return "action_submit_callback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[str, Any]) -> List[Dict[str, Any]]:
        snapshot = default_store().current()
        outcome = callbacks.submit(_slots(tracker), tracker.get_slot(callbacks.REQUEST_SLOT), snapshot,
                                   dt.datetime.now(dt.timezone.utc))
        _say(dispatcher, outcome.messages, callbacks.KIND, outcome.facts, outcome.reason)
        logger.info("callback form ended: %s", outcome.reason)
        events = [SlotSet(slot, None) for slot in callbacks.SLOTS]
        if outcome.request is not None:
            events.append(SlotSet(callbacks.REQUEST_SLOT, outcome.request))
        return events


class ActionStopCallback(Action):
    """Ends the form without storing anything (the patient asked to delete the conversation)."""

    def name(self) -> str:
        return "action_stop_callback"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: Dict[str, Any]) -> List[Dict[str, Any]]:
        return [ActiveLoop(None), SlotSet(REQUESTED_SLOT, None), *(SlotSet(s, None) for s in callbacks.SLOTS)]
