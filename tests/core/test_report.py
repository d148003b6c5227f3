"""Rendering of a Classification: aligned text with bars, Markdown, Telegram HTML and Discord, all escaped."""

from __future__ import annotations

import html
import json
import re

from bot.core.labels import TOXICITY_LABELS
from bot.core.report import (
    as_json,
    bar,
    escape_discord,
    render_discord,
    render_markdown,
    render_raw,
    render_telegram_html,
    render_text,
)
from bot.core.types import Classification, Summary, Task

SCORES = (0.912345, 0.05, 0.0, 0.31, 0.87, 1.0)


def toxic(truncated: bool = False, labels: tuple[str, ...] = TOXICITY_LABELS) -> Classification:
    return Classification(
        model="tiny-toxic",
        task=Task.MULTI_LABEL,
        labels=labels,
        scores=SCORES,
        summary=Summary(label=labels[5], score=1.0, toxic=True),
        truncated=truncated,
    )


def sentiment() -> Classification:
    return Classification(
        model="sst2",
        task=Task.SINGLE_LABEL,
        labels=("NEGATIVE", "POSITIVE"),
        scores=(0.25, 0.75),
        summary=Summary(label="POSITIVE", score=0.75, toxic=None),
    )


def test_bar_is_proportional_and_fixed_width() -> None:
    assert bar(0.0) == "░" * 20
    assert bar(1.0) == "█" * 20
    assert bar(0.5) == "█" * 10 + "░" * 10
    assert bar(1.7) == "█" * 20 and bar(-0.2) == "░" * 20


def test_text_table_has_one_aligned_row_per_label_with_score_and_bar() -> None:
    text = render_text(toxic())
    rows = [line for line in text.splitlines() if line.split(" ")[0] in TOXICITY_LABELS]

    assert [row.split()[0] for row in rows] == list(TOXICITY_LABELS)
    assert [row.split()[1] for row in rows] == ["0.912", "0.050", "0.000", "0.310", "0.870", "1.000"]
    assert len({row.index(row.split()[1]) for row in rows}) == 1  # scores start in one column
    assert len({len(row) for row in rows}) == 1  # bars end in one column
    assert rows[0].endswith(bar(0.912345))
    assert "Toxic: Yes - toxicity class: identity_hate (1.000)" in text
    assert "model: tiny-toxic" in text


def test_text_says_not_toxic_and_notes_truncation() -> None:
    c = toxic(truncated=True)
    not_toxic = Classification(c.model, c.task, c.labels, c.scores, Summary("insult", 0.2, False), truncated=True)

    text = render_text(not_toxic)
    assert "Toxic: No - this text is not toxic" in text
    assert "only its beginning was scored" in text


def test_sentiment_summary_is_the_predicted_label() -> None:
    assert "Prediction: POSITIVE (0.750)" in render_text(sentiment())


def test_markdown_is_a_table_and_escapes_labels() -> None:
    markdown = render_markdown(toxic(labels=("to|xic", "*bold*", "obscene", "threat", "insult", "identity_hate")))
    lines = markdown.splitlines()

    assert "| label | score | |" in lines
    assert "| to\\|xic | 0.912 | `" + bar(0.912345) + "` |" in lines
    assert "| \\*bold\\* | 0.050 |" in markdown
    assert all(line.count("|") - line.count("\\|") == 4 for line in lines if line.startswith("| "))


def test_telegram_html_escapes_user_text_and_labels() -> None:
    evil = '<script>alert("x")</script> & <b>bold</b>'
    labels = ("<toxic>", "severe_toxic", "obscene", "threat", "insult", "a&b")

    rendered = render_telegram_html(toxic(labels=labels), text=evil)

    assert "<script>" not in rendered and "<toxic>" not in rendered and "<b>bold</b>" not in rendered
    assert html.escape(evil) in rendered
    assert "&lt;toxic&gt;" in rendered and "a&amp;b" in rendered
    # only the tags we wrote remain, and they are balanced
    tags = re.findall(r"</?([a-z]+)>", rendered)
    assert set(tags) <= {"i", "b", "pre"}
    assert tags.count("pre") == 2 and tags.count("b") == 2 and tags.count("i") == 2


def test_telegram_html_quotes_long_text_shortened_on_one_line() -> None:
    rendered = render_telegram_html(toxic(), text="line one\nline two " + "x" * 1000)
    quote = rendered.splitlines()[0]
    assert quote.startswith("<i>line one line two ")
    assert len(quote) < 320 and quote.endswith("…</i>")


def test_discord_neutralises_mentions_and_markdown_in_user_text() -> None:
    evil = "@everyone @here <@123> <@&456> **bold** `code` ~~strike~~ ||spoiler|| > quote"

    rendered = render_discord(toxic(), text=evil)
    quote = rendered.splitlines()[0]

    assert "@everyone" not in rendered and "@here" not in rendered
    assert "<@123>" not in rendered and "<@&456>" not in rendered
    assert "**bold**" not in quote and "`code`" not in quote and "||spoiler||" not in quote
    assert quote.startswith("> ")
    assert "\\*\\*bold\\*\\*" in quote


def test_discord_table_sits_in_a_code_block_that_labels_cannot_close() -> None:
    labels = ("toxic```", "severe_toxic", "obscene", "threat", "insult", "identity_hate")
    rendered = render_discord(toxic(labels=labels))

    assert rendered.count("```") == 2
    block = rendered.split("```")[1]
    assert all(label.rstrip("`") in block for label in labels)


def test_escape_discord_keeps_plain_words() -> None:
    assert escape_discord("hello world") == "hello world"


def test_raw_view_is_label_to_exact_score_json() -> None:
    assert json.loads(render_raw(toxic())) == dict(zip(TOXICITY_LABELS, SCORES, strict=True))


def test_as_json_carries_scores_summary_and_text() -> None:
    data = as_json(toxic(truncated=True), text="hi")

    assert data["text"] == "hi" and data["model"] == "tiny-toxic" and data["task"] == "multi_label"
    assert data["scores"]["toxic"] == 0.912345
    assert data["summary"] == {"label": "identity_hate", "score": 1.0, "toxic": True}
    assert data["truncated"] is True
    assert as_json(sentiment())["summary"] == {"label": "POSITIVE", "score": 0.75}
    json.dumps(data)  # serialisable as is


def test_explanations_render_on_every_surface_escaped() -> None:
    from bot.core.explain import Explanation, WordWeight

    why = Explanation("insult", 0.87, (WordWeight("<b>idiot</b>", 4, 16, 0.61), WordWeight("@everyone", 20, 29, 0.2)))
    assert render_text(toxic(), why).splitlines()[-1] == 'why: insult 0.87: "<b>idiot</b>" +0.61, "@everyone" +0.20'
    assert "&lt;b&gt;idiot&lt;/b&gt;" in render_telegram_html(toxic(), explanation=why)
    assert "<b>idiot" not in render_telegram_html(toxic(), explanation=why)
    discord = render_discord(toxic(), explanation=why)
    assert "@everyone" not in discord and "idiot" in discord
    data = as_json(toxic(), "text", why)["explanation"]
    assert data["label"] == "insult" and data["words"][0] == {
        "word": "<b>idiot</b>",
        "start": 4,
        "end": 16,
        "weight": 0.61,
    }
    assert "explanation" not in as_json(toxic()) and "why:" not in render_text(toxic())
