"""The dialogue rules, one table per rule: safety, buttons, variants, context, low confidence."""

from __future__ import annotations

from dataclasses import replace
from typing import Optional, Sequence, Tuple

import pytest

from clinic.fact_store import Snapshot
from clinic.replies import Reply, Turn, decide, payload_for
from clinic.scope import TREATMENT, Judgement


def turn(text: str, intent: Optional[str], confidence: float = 0.9,
         others: Sequence[Tuple[str, float]] = (), **context) -> Turn:
    ranking = ((intent, confidence), *others) if intent else tuple(others)
    return Turn(text=text, intent=intent, ranking=ranking, **context)


def texts(reply: Reply) -> str:
    return "\n".join(m.text for m in reply.messages)


@pytest.mark.parametrize("intent", [
    "ask_collagen", "ask_wrinkles", "ask_skin_tone", "ask_acne_scars", "ask_scars", "ask_stretch_marks",
    "ask_session_length", "ask_numbing", "ask_downtime", "ask_sunscreen", "ask_aftercare", "ask_sessions",
    "ask_side_effects", "ask_candidacy", "ask_cost", "book_appointment", "request_human", "greet", "goodbye",
    "thank", "bot_challenge", "out_of_scope",
])
def test_each_intent_is_answered_by_a_fact_for_that_intent(snapshot: Snapshot, intent: str) -> None:
    reply = decide(turn("a question", intent), snapshot)
    assert reply.kind in ("answer", "out_of_scope")
    assert intent in snapshot.facts[reply.facts[-1]].intents
    assert texts(reply) == snapshot.render(snapshot.facts[reply.facts[-1]]) + _source_line(snapshot, reply)


def _source_line(snapshot: Snapshot, reply: Reply) -> str:
    sources = snapshot.facts[reply.facts[-1]].sources
    return f"\nSource: {sources[0].title} ({sources[0].url})" if sources else ""


def test_topic_answers_offer_follow_up_buttons_that_name_their_fact(snapshot: Snapshot) -> None:
    reply = decide(turn("how long will I be red?", "ask_downtime"), snapshot)
    buttons = reply.messages[-1].buttons
    assert 1 <= len(buttons) <= 3
    for button in buttons:
        target = next(f for f in snapshot.facts.values() if f.intents and payload_for(f) == button.payload)
        assert button.title == target.title
    assert reply.topic == "downtime"


# --- safety first ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, intent", [
    ("there's pus coming out of a spot on my cheek", "ask_acne_scars"),
    ("I have a fever since my microneedling yesterday", "ask_downtime"),
    ("got blisters on my forehead", "ask_aftercare"),
    ("blisters after microneedling normal?", "ask_downtime"),
    ("the redness is spreading down my neck", "ask_downtime"),
    ("it's been 10 days and I'm still really red", "ask_downtime"),
    ("my face is hot to the touch and swollen", "ask_side_effects"),
    ("severe pain in my cheek tonight", "ask_numbing"),
    ("I think my skin is infected", "ask_side_effects"),
    ("cold sores came up after my treatment", "ask_candidacy"),
    ("I get cold sores often but this one came up since the session", "ask_candidacy"),
    ("I keep getting dizzy spells a lot since my microneedling", "ask_side_effects"),
    ("my throat is swelling and I can't breathe", "greet"),
])
def test_warning_signs_take_the_urgent_path_whatever_the_intent(snapshot: Snapshot, text: str, intent: str) -> None:
    reply = decide(turn(text, intent, 0.95), snapshot)
    assert reply.kind == "urgent", reply.reason
    answer = texts(reply)
    assert snapshot.settings["phone"] in answer and snapshot.settings["emergency_number"] in answer


@pytest.mark.parametrize("text, intent", [
    ("can microneedling cause an infection?", "ask_side_effects"),
    ("what are the risks", "ask_side_effects"),
    ("does it hurt a lot?", "ask_numbing"),
    ("how long will my face be red", "ask_downtime"),
    ("is it safe if I get cold sores sometimes?", "ask_candidacy"),
    ("I'm prone to cold sores, can I still have it", "ask_candidacy"),
    ("my sister has had herpes in the past, is microneedling ok for her", "ask_candidacy"),
])
def test_general_questions_about_risks_get_the_fact_not_the_alarm(snapshot: Snapshot, text: str, intent: str) -> None:
    assert decide(turn(text, intent, 0.9, [("report_complication", 0.04)]), snapshot).kind == "answer"


def test_complication_report_is_urgent_even_when_first_in_the_session(snapshot: Snapshot) -> None:
    reply = decide(turn("something is wrong with my face", "report_complication", first_of_session=True), snapshot)
    assert reply.kind == "urgent" and reply.facts == ("urgent",)


@pytest.mark.parametrize("ranking", [
    (("ask_downtime", 0.45), ("report_complication", 0.35)),  # close behind
    (("ask_side_effects", 0.62), ("report_complication", 0.31)),  # substantial on its own
    (("nlu_fallback", 0.7), ("ask_downtime", 0.25), ("report_complication", 0.2)),
])
def test_a_near_miss_for_a_complication_report_is_treated_as_one(snapshot: Snapshot, ranking) -> None:
    reply = decide(Turn(text="face feels weird now", intent=ranking[0][0], ranking=ranking), snapshot)
    assert reply.kind == "urgent"


# --- buttons, blank input -------------------------------------------------------------------------

def test_a_button_answers_exactly_the_fact_it_names(snapshot: Snapshot) -> None:
    reply = decide(Turn(text='/ask_aftercare{"fact":"aftercare_makeup"}', intent="ask_aftercare",
                        ranking=(("ask_aftercare", 1.0),), fact_entity="aftercare_makeup"), snapshot)
    assert reply.facts == ("aftercare_makeup",)


def test_a_button_cannot_pick_a_fact_of_another_intent(snapshot: Snapshot) -> None:
    reply = decide(Turn(text="/ask_downtime", intent="ask_downtime", ranking=(("ask_downtime", 1.0),),
                        fact_entity="urgent"), snapshot)
    assert reply.facts == ("downtime",)


@pytest.mark.parametrize("text", ["", "   ", "👍🙂", "???", "…"])
def test_nothing_readable_gets_a_polite_request_to_type(snapshot: Snapshot, text: str) -> None:
    reply = decide(turn(text, "greet", 0.4), snapshot)
    assert reply.kind == "empty" and reply.facts == ("empty_message",)


# --- low confidence: did you mean, then a person; never a guess -----------------------------------

def test_low_confidence_offers_the_likeliest_topics_and_a_person(snapshot: Snapshot) -> None:
    ranking = (("nlu_fallback", 0.7), ("ask_downtime", 0.28), ("greet", 0.2), ("ask_aftercare", 0.26),
               ("ask_sunscreen", 0.1), ("ask_cost", 0.05))
    reply = decide(Turn(text="after thing skin", intent="nlu_fallback", ranking=ranking), snapshot)
    assert reply.kind == "clarify" and reply.clarifying
    titles = [b.title for b in reply.messages[0].buttons]
    assert titles[:3] == ["Downtime", "Aftercare", "Sun protection"]
    assert titles[-1] == snapshot.facts["human_handoff"].title
    assert reply.topic is None  # nothing was answered


def test_a_second_miss_offers_a_person(snapshot: Snapshot) -> None:
    ranking = (("nlu_fallback", 0.7), ("ask_downtime", 0.2))
    reply = decide(Turn(text="blah skin thing", intent="nlu_fallback", ranking=ranking, clarifying=True), snapshot)
    assert reply.kind == "handoff" and not reply.clarifying
    assert snapshot.settings["phone"] in texts(reply)


def test_an_unsure_off_topic_message_gets_the_scope_answer(snapshot: Snapshot) -> None:
    ranking = (("nlu_fallback", 0.7), ("out_of_scope", 0.29), ("ask_cost", 0.2))
    reply = decide(Turn(text="what about the football", intent="nlu_fallback", ranking=ranking), snapshot)
    assert reply.facts == ("out_of_scope",)


# --- context across turns -------------------------------------------------------------------------

def test_a_referring_follow_up_continues_the_last_topic(snapshot: Snapshot) -> None:
    ranking = (("nlu_fallback", 0.7), ("ask_sessions", 0.3), ("ask_downtime", 0.25))
    reply = decide(Turn(text="and how long does that last?", intent="nlu_fallback", ranking=ranking,
                        last_topic="downtime"), snapshot)
    assert reply.facts == ("downtime",) and reply.reason == "context"


def test_context_does_not_override_a_confident_new_question(snapshot: Snapshot) -> None:
    ranking = (("ask_numbing", 0.92), ("ask_downtime", 0.03))
    reply = decide(Turn(text="does it hurt?", intent="ask_numbing", ranking=ranking, last_topic="downtime"), snapshot)
    assert reply.facts == ("numbing",)


def test_a_referring_question_without_context_asks_back(snapshot: Snapshot) -> None:
    ranking = (("nlu_fallback", 0.7), ("ask_sessions", 0.3), ("ask_downtime", 0.25))
    reply = decide(Turn(text="and how long does that last?", intent="nlu_fallback", ranking=ranking), snapshot)
    assert reply.kind == "clarify"


# --- the welcome, and candidacy without a verdict -------------------------------------------------

def test_the_first_message_of_a_session_says_what_the_assistant_does(snapshot: Snapshot) -> None:
    reply = decide(turn("do you numb it", "ask_numbing", first_of_session=True), snapshot)
    assert reply.facts == ("welcome", "numbing")
    assert not reply.messages[0].buttons  # the answer's buttons come last, once
    welcome = texts(reply).lower()
    assert "general information" in welcome or "not a personal" in welcome or "medical" in welcome


def test_a_greeting_first_gets_the_welcome_once(snapshot: Snapshot) -> None:
    reply = decide(turn("hello", "greet", first_of_session=True), snapshot)
    assert reply.facts == ("welcome",)


@pytest.mark.parametrize("text", [
    "can I have it, I'm pregnant", "am I a candidate?", "I take accutane, is that ok",
    "I have rosacea can i do it", "I have dark skin will it work",
])
def test_candidacy_explains_the_rule_and_offers_a_consultation(snapshot: Snapshot, text: str) -> None:
    reply = decide(turn(text, "ask_candidacy"), snapshot)
    answer = texts(reply).lower()
    assert not answer.startswith(("yes", "no", "you can", "you can't", "you cannot"))
    assert "consult" in answer or "clinician" in answer or "assess" in answer


# --- the urgent path: reports, not words -----------------------------------------------------------

@pytest.mark.parametrize("text", [
    "I can't stop the bleeding from my cheek, it's been two hours",
    "my lips and tongue are swelling up after the numbing cream",
    "I'm struggling to swallow since the session",
    "my vision has gone blurry since the treatment near my eye",
    "there are red streaks going down my neck from where they treated",
    "I've had chills all night since my microneedling",
    "yellow stuff is oozing out of my chin",
    "a blister has come up on my cheek",
    "the pain keeps getting worse every day since the treatment",
    "there's a lump under my jaw and it keeps getting bigger",
    "I fainted in the car park after my appointment",
    "a cold sore broke out on my lip two days after the session",
    "it's been two weeks and my face is still swollen and sore",
    "my daughter had it done and now she has a fever",
    "did microneedling at home with a roller, now it's infected",
])
def test_each_warning_sign_reported_now_takes_the_urgent_path(snapshot: Snapshot, text: str) -> None:
    reply = decide(turn(text, "ask_downtime", 0.9), snapshot)
    assert reply.kind == "urgent", reply.reason


@pytest.mark.parametrize("text", [
    "no fever or pus, just a bit pink on day 2",
    "not bleeding any more, is the redness normal?",
    "I don't have blisters, only some flaking",
    "there's no swelling but my skin feels tight",
])
def test_a_negated_sign_is_not_a_report(snapshot: Snapshot, text: str) -> None:
    assert decide(turn(text, "ask_downtime", 0.9), snapshot).kind == "answer"


@pytest.mark.parametrize("text, intent", [
    ("what happens if it gets infected?", "ask_side_effects"),
    ("can microneedling cause blisters?", "ask_side_effects"),
    ("will I bleed a lot, I'm on blood thinners", "ask_candidacy"),
    ("how do I keep it clean so it doesn't get infected", "ask_aftercare"),
    ("what are the chances of a cold sore flare after treatment", "ask_side_effects"),
])
def test_a_sign_asked_about_as_a_risk_gets_the_fact(snapshot: Snapshot, text: str, intent: str) -> None:
    reply = decide(turn(text, intent, 0.8, [("report_complication", 0.15)]), snapshot)
    assert reply.kind == "answer" and intent in snapshot.facts[reply.facts[-1]].intents, reply.reason


def test_a_present_strong_sign_in_a_question_is_still_urgent(snapshot: Snapshot) -> None:
    assert decide(turn("pus coming out of a few spots, is that normal?", "ask_downtime"), snapshot).kind == "urgent"


def test_a_cold_sore_before_treatment_is_a_candidacy_question(snapshot: Snapshot) -> None:
    reply = decide(turn("I have a cold sore right now, should I move my appointment", "ask_candidacy", 0.6,
                        [("report_complication", 0.2)]), snapshot)
    assert reply.kind == "answer" and reply.facts[-1].startswith("candidacy")


def test_a_question_about_what_to_do_is_not_a_report_even_if_the_classifier_says_so(snapshot: Snapshot) -> None:
    reply = decide(turn("can I use a sheet mask while my face is still red", "report_complication", 0.5,
                        [("ask_aftercare", 0.4)]), snapshot)
    assert reply.kind == "answer" and reply.facts == ("aftercare",), reply.reason


def test_asking_whether_to_go_to_hospital_is_urgent(snapshot: Snapshot) -> None:
    assert decide(turn("should I go to A&E with this?", "ask_side_effects"), snapshot).kind == "urgent"


def test_the_urgent_answer_speaks_to_someone_who_has_the_symptom_now(snapshot: Snapshot) -> None:
    answer = texts(decide(turn("my face is oozing pus", "report_complication"), snapshot))
    assert answer.startswith("What you describe needs a clinician today")
    for key in ("phone", "after_hours_phone", "emergency_number"):
        assert str(snapshot.settings[key]) in answer


# --- the scope: another treatment, another subject -----------------------------------------------

def scoped(text: str, intent: str, foreign: Tuple[str, ...] = (), anchors: Tuple[str, ...] = (),
           others: Sequence[Tuple[str, float]] = (), **context) -> Turn:
    return turn(text, intent, 0.9, others, scope=Judgement(foreign, anchors, bool(TREATMENT.search(text))),
                **context)


@pytest.mark.parametrize("text, intent", [
    ("how long does botox last", "ask_sessions"),
    ("how much is lip filler", "ask_cost"),
    ("is laser hair removal painful", "ask_numbing"),
    ("can I book a chemical peel", "book_appointment"),
    ("what's the downtime after a facelift", "ask_downtime"),
])
def test_a_treatment_the_clinic_does_not_offer_gets_the_other_treatment_answer(
        snapshot: Snapshot, text: str, intent: str) -> None:
    reply = decide(scoped(text, intent), snapshot)
    assert reply.kind == "out_of_scope" and reply.facts == ("other_treatment",), reply.reason
    assert snapshot.settings["phone"] in texts(reply) and reply.topic is None


@pytest.mark.parametrize("text, intent", [
    ("is it a laser?", "ask_collagen"),
    ("I had botox last week, can I still have microneedling", "ask_candidacy"),
    ("can microneedling help my acne scars or do I need a laser", "ask_acne_scars"),
])
def test_a_question_about_microneedling_that_names_another_treatment_is_answered(
        snapshot: Snapshot, text: str, intent: str) -> None:
    reply = decide(scoped(text, intent), snapshot)
    assert reply.kind == "answer" and intent in snapshot.facts[reply.facts[-1]].intents


def test_a_question_about_something_else_gets_the_scope_answer_whatever_its_shape(snapshot: Snapshot) -> None:
    reply = decide(scoped("how long does it take to boil an egg", "ask_session_length", foreign=("boil", "egg")),
                   snapshot)
    assert reply.kind == "out_of_scope" and reply.facts == ("out_of_scope",)
    assert "boil" in reply.reason


def test_a_word_naming_the_topic_keeps_the_question_in_scope(snapshot: Snapshot) -> None:
    reply = decide(scoped("I fell off my bike and have a scar on my chin", "ask_scars", foreign=("bike",),
                          anchors=("scar",)), snapshot)
    assert reply.facts[-1] in ("scars", "raised_scars")


def test_a_foreign_word_with_the_classifier_leaning_off_topic_is_off_topic(snapshot: Snapshot) -> None:
    reply = decide(scoped("how long will my knee stay swollen after arthroscopy", "ask_downtime",
                          foreign=("arthroscopy",), anchors=("swell",), others=[("out_of_scope", 0.3)]), snapshot)
    assert reply.kind == "out_of_scope"
    leaning_in = decide(scoped("can I go in a hot tub after", "ask_aftercare", foreign=("tub",),
                               anchors=("aftercare",), others=[("out_of_scope", 0.05)]), snapshot)
    assert leaning_in.kind == "answer"


@pytest.mark.parametrize("text, anchors, foreign, expected", [
    # words naming the topic, nothing from outside it: ask which topic, never "not about us"
    ("what's best to soothe the redness", ("soothe", "redness"), (), "clarify"),
    ("how do I keep it clean so it doesn't get infected", ("infect",), (), "clarify"),
    # a word from outside the topic: the classifier's out_of_scope stands
    ("what are the odds of getting an infection from a tattoo", ("infection",), ("odds", "tattoo"), "out_of_scope"),
    # nothing naming the topic: out_of_scope stands
    ("what's the weather like tomorrow", (), ("weather",), "out_of_scope"),
])
def test_out_of_scope_from_the_classifier_meets_the_words(snapshot: Snapshot, text: str, anchors: Tuple[str, ...],
                                                         foreign: Tuple[str, ...], expected: str) -> None:
    leaning = (("out_of_scope", 0.49), ("ask_aftercare", 0.15))  # as the classifier gave "soothe the redness"
    top = decide(replace(scoped(text, "out_of_scope", foreign=foreign, anchors=anchors), ranking=leaning), snapshot)
    unsure = decide(turn(text, "nlu_fallback", 0.25, [("out_of_scope", 0.24), ("ask_aftercare", 0.1)],
                         scope=Judgement(foreign, anchors, False)), snapshot)
    assert top.kind == unsure.kind == expected, (top.reason, unsure.reason)
    if expected == "clarify":
        assert "out_of_scope" not in texts(top) and top.messages[0].buttons


def test_a_stray_domain_word_does_not_undo_a_sure_out_of_scope(snapshot: Snapshot) -> None:
    sure = decide(scoped("will it be sunny on saturday", "out_of_scope", anchors=("saturday",)), snapshot)
    assert sure.kind == "out_of_scope"  # the classifier's 0.9 stands


@pytest.mark.parametrize("confidence, out_of_scope, foreign, expected", [
    (0.98, 0.0, ("cash",), "answer"),  # sure of the topic, nothing off-topic: one stray word does not outweigh it
    (0.98, 0.0, ("boil", "egg"), "out_of_scope"),  # two foreign words: the words win
    (0.98, 0.05, ("cash",), "out_of_scope"),  # the classifier itself sees something off-topic
    (0.6, 0.0, ("cash",), "out_of_scope"),  # not sure of the topic
])
def test_one_foreign_word_against_a_sure_classifier(snapshot: Snapshot, confidence: float, out_of_scope: float,
                                                   foreign: Tuple[str, ...], expected: str) -> None:
    message = scoped("do you take card payments or is it cash only", "ask_cost", foreign=foreign)
    message = replace(message, ranking=(("ask_cost", confidence), ("out_of_scope", out_of_scope)))
    assert decide(message, snapshot).kind == expected


def test_a_short_referring_follow_up_keeps_the_topic_even_with_a_foreign_word(snapshot: Snapshot) -> None:
    unsure = (("ask_session_length", 0.7),)  # below SURE_TOPIC: the foreign word would decide
    reply = decide(replace(scoped("and for how many weekends is that?", "ask_session_length", foreign=("weekends",),
                                  last_topic="downtime"), ranking=unsure), snapshot)
    assert reply.kind == "answer"
    without_context = decide(replace(scoped("and for how many weekends is that?", "ask_session_length",
                                            foreign=("weekends",)), ranking=unsure), snapshot)
    assert without_context.kind == "out_of_scope"


def test_without_a_scope_judgement_the_intent_decides(snapshot: Snapshot) -> None:
    assert decide(turn("how long does it take to boil an egg", "ask_session_length"), snapshot).kind == "answer"
