"""The language gate's identifier with the real py3langid model (no mocks): what it calls foreign, what it must not.

The messages here are hand-written for these tests and differ from bench/language.py's, which chose the thresholds.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.core.language import LanguageIdentifier, language_name

ENGLISH = ("en",)


@pytest.fixture(scope="module")
def identifier() -> LanguageIdentifier:
    return LanguageIdentifier()


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("¿alguien sabe a qué hora empieza el torneo de hoy?", "es"),
        ("kannst du bitte aufhören, den ganzen chat vollzuspammen", "de"),
        ("je comprends rien à ce que vous racontez depuis une heure", "fr"),
        ("vocês viram o jogo de ontem? foi incrível demais", "pt"),
        ("ragazzi, stasera facciamo la solita partita o no?", "it"),
        ("ребята, кто сегодня вечером будет играть с нами?", "ru"),
    ],
)
def test_a_message_clearly_in_another_language_is_foreign(identifier: LanguageIdentifier, text: str, code: str) -> None:
    assert identifier.foreign_language(text, ENGLISH) == code


@pytest.mark.parametrize(
    "text",
    [
        "shut your mouth you worthless piece of garbage",
        "SHUT UP NOBODY WANTS YOU HERE YOU STUPID CLOWN",
        "ur so trash at this game lmao uninstall",
        "i swear i will find where you live",
        "honestly this update is the best thing that happened to the game",
        "@user check this out https://example.com/watch?v=123 so good",
    ],
)
def test_english_chat_is_never_foreign(identifier: LanguageIdentifier, text: str) -> None:
    # an English abuser must not escape the model by being misread as another language
    assert identifier.foreign_language(text, ENGLISH) is None


@pytest.mark.parametrize("text", ["hola amigo", "danke dir", "merci bien", "привет всем", "", "12345 !!!", "🔥🔥🔥"])
def test_short_messages_default_to_the_models_language(identifier: LanguageIdentifier, text: str) -> None:
    assert identifier.identify(text) is None
    assert identifier.foreign_language(text, ENGLISH) is None


def test_links_mentions_and_digits_do_not_count_as_letters(identifier: LanguageIdentifier) -> None:
    text = "hola <@123456789> https://example.com/a/b/c #torneo 2024 @juan"
    assert identifier.identify(text) is None
    assert identifier.identify("hola a todos, qué tal estáis hoy") is not None


def test_an_expected_language_is_not_foreign(identifier: LanguageIdentifier) -> None:
    text = "¿alguien sabe a qué hora empieza el torneo de hoy?"
    assert identifier.foreign_language(text, ("en", "es")) is None
    assert identifier.foreign_language(text, ("en",)) == "es"


def test_english_lexified_pidgin_counts_as_english(identifier: LanguageIdentifier) -> None:
    text = "abeg make una no dey waste my time, this thing no go work"
    assert identifier.identify(text)[0] == "pcm"
    assert identifier.foreign_language(text, ENGLISH) is None
    assert identifier.foreign_language(text, ("fr",)) == "pcm"


def test_mixed_messages_default_to_the_models_language(identifier: LanguageIdentifier) -> None:
    assert identifier.foreign_language("lol that was hilarious, gracias amigo", ENGLISH) is None


def test_a_stricter_confidence_flags_less() -> None:
    text = "bueno gracias"  # 12 letters: too short by default
    assert LanguageIdentifier().foreign_language(text, ENGLISH) is None
    found = LanguageIdentifier(min_letters=5).identify(text)
    assert found is not None and found[0] == "es"
    assert LanguageIdentifier(min_letters=5, min_confidence=1.0).foreign_language(text, ENGLISH) is None


def test_concurrent_first_use_loads_once_and_answers_alike() -> None:
    fresh = LanguageIdentifier()
    texts = ["¿alguien sabe a qué hora empieza el torneo de hoy?", "shut your mouth you worthless piece of garbage"] * 8
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda text: fresh.foreign_language(text, ENGLISH), texts))
    assert answers == ["es", None] * 8


@pytest.mark.parametrize(("args", "kwargs"), [((), {"min_letters": 0}), ((), {"min_confidence": 0.2})])
def test_bad_settings_are_refused(args: tuple, kwargs: dict) -> None:
    with pytest.raises(ValueError, match="min_letters"):
        LanguageIdentifier(*args, **kwargs)


def test_language_names() -> None:
    assert language_name("es") == "Spanish"
    assert language_name("de") == "German"
    assert language_name("pt") == "Portuguese"
    assert language_name("ace") == "Achinese"
    assert language_name("qq") == "qq"
