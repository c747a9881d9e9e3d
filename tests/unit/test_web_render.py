"""Pure pieces of the web app: the CSP it sends, the thumbnail width classes, dates."""

from __future__ import annotations

from services.api.web.app import content_security_policy
from services.api.web.render import month_label, ratio_class, when
from shared.settings import load_settings


def test_csp_allows_no_inline_script_or_style_and_no_foreign_images_by_default() -> None:
    csp = content_security_policy(load_settings({}))
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "script-src 'self';" in csp and "style-src 'self';" in csp
    assert "img-src 'self' data: blob:;" in csp


def test_csp_admits_the_configured_tile_server_for_images() -> None:
    settings = load_settings(
        {"SHOEBOX_MAP_TILE_URL": "https://{s}.tiles.example.org/{z}/{x}/{y}.png"}
    )
    assert "img-src 'self' data: blob: https://*.tiles.example.org;" in content_security_policy(
        settings
    )


def test_ratio_class_rounds_to_tenths_within_the_css_range() -> None:
    assert ratio_class(1.5) == "r15"
    assert ratio_class(0.66) == "r7"
    assert ratio_class(0.1) == "r5"
    assert ratio_class(12.0) == "r30"


def test_dates_read_as_people_read_them() -> None:
    assert month_label("2024-12-01") == "December 2024"
    assert when("2024-12-24T18:00:00.000Z") == "24 Dec 2024, 18:00 UTC"
    assert when(None) == "never"
