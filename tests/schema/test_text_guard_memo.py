"""The query text guard remembers what it found per parsed document without keeping documents
alive (schema/text_guard.py): a document the document cache does not hold is freed after its
request, and its entry with it."""

from __future__ import annotations

import gc

from graphql import parse

from schema import text_guard


def test_a_remembered_document_is_not_kept_alive() -> None:
    document = parse('query ($code: String) { team(code: "x") { code } }')
    assert text_guard._document_facts(document) == (frozenset({"code"}), None)
    key = id(document)
    assert key in text_guard._REMEMBERED
    del document
    gc.collect()
    assert key not in text_guard._REMEMBERED


def test_the_literal_problem_is_remembered_with_the_document() -> None:
    document = parse('{ team(code: "' + "x" * (text_guard.MAX_QUERY_TEXT + 1) + '") { code } }')
    first = text_guard._document_facts(document)
    assert first[1] is not None and "at most" in first[1]
    assert text_guard._document_facts(document) == first
