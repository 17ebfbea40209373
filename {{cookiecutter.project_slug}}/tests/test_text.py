"""The text pipeline on its own: incremental decoding, stop strings and reasoning tags."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from {{ cookiecutter.package_name }}._core._text import IncrementalDecoder, ResponseParser


def feed_all(parser: ResponseParser, pieces: list[str]) -> list[str]:
    shown = [parser.feed(piece) for piece in pieces]
    shown.append(parser.finish())
    return shown


def splits(text: str) -> list[list[str]]:
    """The text cut at every single position, and char by char."""
    return [[text[:i], text[i:]] for i in range(len(text) + 1)] + [list(text)]


@pytest.mark.parametrize("pieces", splits("one two STOP three"))
def test_stop_string_is_cut_wherever_the_pieces_split(pieces: list[str]) -> None:
    parser = ResponseParser(["STOP"])
    shown = feed_all(parser, pieces)
    assert "".join(shown) == parser.content == "one two "
    assert parser.stopped


@pytest.mark.parametrize("pieces", splits("<think>plan</think>\n answer <think>more</think>end"))
def test_reasoning_is_split_wherever_the_pieces_split(pieces: list[str]) -> None:
    parser = ResponseParser()
    shown = feed_all(parser, pieces)
    assert "".join(shown) == parser.content == "answer end"
    assert parser.thought == "planmore"


def test_earliest_of_several_stop_strings_wins() -> None:
    parser = ResponseParser(["END", "stop"])
    assert "".join(feed_all(parser, ["a stop b END"])) == "a "


def test_prompt_that_opens_a_thought() -> None:
    parser = ResponseParser(starts_in_thought=True)
    assert "".join(feed_all(parser, ["reason", "ing</think>\n\nAnswer"])) == "Answer"
    assert parser.thought == "reasoning"


def test_incomplete_tag_at_the_end_is_content() -> None:
    parser = ResponseParser(["STOP"])
    assert "".join(feed_all(parser, ["a <thi", "nk", " ST"])) == "a <think ST"
    assert not parser.stopped


def test_incremental_decoder_matches_full_decode(tiny_model_path: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    text = "Unicode: café, 日本語 🙂 and 🚀 with  spaces\nand lines."
    ids = tokenizer.encode(text, add_special_tokens=False)
    decoder = IncrementalDecoder(tokenizer)
    deltas = [decoder.add([token]) for token in ids] + [decoder.flush()]
    assert "".join(deltas) == tokenizer.decode(ids) == text
    assert not any("\ufffd" in delta for delta in deltas)
