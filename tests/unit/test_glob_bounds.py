"""Exclusion patterns cannot make matching run away: bounded at the API, bounded per match."""

from __future__ import annotations

import pytest

from shared.globs import (
    DEFAULT_EXCLUSION_PATTERNS,
    MAX_EXTGLOB_DEPTH,
    MAX_EXTGLOBS,
    ExclusionMatcher,
    MatchTooSlow,
    validate_pattern,
    validate_patterns,
)

# The pattern of the report: 172 characters, accepted before, 100% CPU for good on a long name.
HOSTILE = "**/" + "?(a|aa)" * 24 + "b"
LONG_NAME = "/photos/" + "a" * 250

# The worst shapes found that pass the API's bounds: alternatives that match the same text
# inside a repeated or negated group backtrack exponentially in the name's length, even in
# the `regex` module (tried: stars, nested stars, `?|a`, `a*`, groups of groups).
WORST_ACCEPTED = [
    "**/!(*(a|aa)b)",
    "**/" + "+(a|aa)" * MAX_EXTGLOBS + "b",
]


class TestApiBounds:
    def test_reported_pattern_is_refused_when_it_has_too_many_extglobs(self) -> None:
        assert len(HOSTILE) == 172
        assert validate_pattern(HOSTILE) is None  # the matcher can still read it...
        refused = validate_patterns([*DEFAULT_EXCLUSION_PATTERNS, HOSTILE])
        assert refused == (
            HOSTILE,
            f"Exclusion pattern must have at most {MAX_EXTGLOBS} extglob groups such as @(a|b)",
        )

    def test_refused_when_extglobs_nest_too_deep(self) -> None:
        nested = "**/" + "@(" * (MAX_EXTGLOB_DEPTH + 1) + "a" + ")" * (MAX_EXTGLOB_DEPTH + 1)
        refused = validate_patterns([nested])
        assert refused is not None and "nest" in refused[1]
        assert validate_patterns(["**/!(*.@(jpg|png))"]) is None

    def test_escaped_or_plain_parentheses_are_not_extglobs(self) -> None:
        many = "**/" + "\\*(a)" * (MAX_EXTGLOBS + 1) + "(b)" * (MAX_EXTGLOBS + 1)
        assert validate_patterns([many]) is None

    def test_refused_when_the_list_compiles_to_too_large_a_regex(self) -> None:
        # 512 expansions each: fine alone, too much work together.
        wide = "**/{a,b}{c,d}{e,f}{g,h}{i,j}{k,l}{m,n}{o,p}{q,r}/*.x"
        assert validate_patterns([wide]) is None
        wides = [wide + str(i) for i in range(5)]
        refused = validate_patterns(wides)
        assert refused is not None and refused[0] in wides[1:] and "too complex" in refused[1]

    def test_defaults_and_worst_accepted_shapes_pass(self) -> None:
        assert validate_patterns(DEFAULT_EXCLUSION_PATTERNS) is None
        assert validate_patterns(WORST_ACCEPTED) is None


class TestMatchBound:
    @pytest.mark.parametrize("pattern", WORST_ACCEPTED)
    def test_match_gives_up_when_an_accepted_pattern_backtracks(self, pattern: str) -> None:
        matcher = ExclusionMatcher([pattern], timeout=0.05)
        with pytest.raises(MatchTooSlow, match=r"took more than 1 s"):  # 0.05 s, then 20x
            matcher.matches(LONG_NAME)
        # Spent once: every later call answers at once, whatever the path.
        with pytest.raises(MatchTooSlow):
            matcher.matches("/photos/b")

    def test_negated_patterns_share_the_bound(self) -> None:
        matcher = ExclusionMatcher(["!**/!(*(a|aa)b)", "!**/x"], timeout=0.05)
        with pytest.raises(MatchTooSlow):
            matcher.matches(LONG_NAME + ".jpg")

    def test_reported_pattern_answers_when_matched(self) -> None:
        # Stored before the bounds: the matcher still reads it, and its regex does not blow up.
        matcher = ExclusionMatcher([HOSTILE])
        assert matcher.matches(LONG_NAME) is False
        assert matcher.matches("/photos/aab") is True

    def test_ordinary_patterns_never_reach_the_bound(self) -> None:
        matcher = ExclusionMatcher([*DEFAULT_EXCLUSION_PATTERNS, "**/*.{tif,raw}"])
        assert matcher.matches("/photos/@eaDir/" + "a" * 250)
        assert not matcher.matches(LONG_NAME + ".jpg")
