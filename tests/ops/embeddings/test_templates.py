"""Item text templates on normalized items rows, including text-less items."""

from __future__ import annotations

import polars as pl
import pytest

from ops.embeddings.templates import AMAZON, HM, MIND, TextTemplate, render_texts
from ops.ingest.schema import ITEMS


def items(*rows: dict) -> pl.DataFrame:
    defaults = {
        "title": None,
        "description": None,
        "brand": None,
        "categories": [],
        "price": None,
        "attributes": "{}",
        "has_text": True,
        "source": "test",
    }
    return pl.DataFrame([{**defaults, **row} for row in rows], schema=ITEMS)


def test_amazon_title_brand_categories() -> None:
    frame = items(
        {"item_id": "a", "title": "Matte  Lipstick\n Ruby", "brand": "Glossier", "categories": ["Beauty", "Lips"]},
        {"item_id": "b", "title": "Shampoo 12 oz", "categories": ["Beauty", "Hair Care"]},  # no brand: no "; ;"
        {"item_id": "c", "has_text": False},  # referenced by interactions, absent from the catalogue
        {"item_id": "d", "title": "  ", "description": "only a description"},  # nothing the template uses
    )
    assert render_texts(frame, AMAZON) == [
        "Matte Lipstick Ruby; Glossier; Beauty, Lips",
        "Shampoo 12 oz; Beauty, Hair Care",
        "",
        "",
    ]


def test_mind_title_abstract_category_subcategory() -> None:
    frame = items(
        {
            "item_id": "N1",
            "title": "Storm hits coast",
            "description": "Winds of 90 mph.",
            "categories": ["news", "weather"],
        },
        {"item_id": "N2", "title": "Cup final tonight", "categories": ["sports"]},  # no abstract, no subcategory
    )
    assert render_texts(frame, MIND) == [
        "Storm hits coast; Winds of 90 mph.; news; weather",
        "Cup final tonight; sports",
    ]


def test_hm_uses_attribute_keys() -> None:
    frame = items(
        {
            "item_id": "0108775015",
            "title": "Strap top",
            "description": "Jersey top with narrow straps.",
            "categories": ["Ladieswear", "Garment Upper body", "Vest top"],
            "attributes": '{"colour_group_name":"Black","graphical_appearance_name":"Solid","section_name":"Basics"}',
        },
    )
    assert render_texts(frame, HM) == [
        "Strap top; Ladieswear, Garment Upper body, Vest top; Black; Solid; Jersey top with narrow straps."
    ]


def test_template_identity_follows_fields_and_unknown_fields_fail() -> None:
    assert TextTemplate("amazon", ("title",)).identity != AMAZON.identity
    with pytest.raises(ValueError, match="unknown"):
        TextTemplate("typo", ("titel",))
