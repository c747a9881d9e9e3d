"""Exclusion patterns agree with minimatch {dot: true, nocase: true} on full paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.errors import InvalidInput
from shared.globs import (
    DEFAULT_EXCLUSION_PATTERNS,
    MAX_PATTERN_LENGTH,
    ExclusionMatcher,
    _lean,
    _translate,
    escape_literal,
    validate_pattern,
)

GLOB_TRUTH = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "glob-truth.json"

# Path segments that exercise case, dots, extensions and glob syntax in file names, but never
# `.` or `..`: the scanner only ever matches real (normalised) paths.
_NAME_ALPHABET = "abAB.x1 -_@#{},()[]!*?+|~"
names = st.text(_NAME_ALPHABET, min_size=1, max_size=8).filter(lambda s: s not in (".", ".."))
abs_paths = st.lists(names, min_size=1, max_size=6).map(lambda parts: "/" + "/".join(parts))


class TestGroundTruth:
    def test_every_case_agrees_with_minimatch_when_read_from_glob_truth(self) -> None:
        if not GLOB_TRUTH.exists():
            pytest.skip(f"ground truth not found at {GLOB_TRUTH} (it lives in ../shared)")
        cases = json.loads(GLOB_TRUTH.read_text())["cases"]
        assert cases, "glob-truth.json has no cases"
        matchers: dict[str, ExclusionMatcher] = {}
        disagreements = []
        for case in cases:
            pattern, path, expected = case["pattern"], case["path"], case["match"]
            matcher = matchers.get(pattern) or matchers.setdefault(
                pattern, ExclusionMatcher([pattern])
            )
            if matcher.matches(path) is not expected:
                disagreements.append(f"{pattern!r} on {path!r}: minimatch says {expected}")
        assert not disagreements, (
            f"{len(disagreements)} of {len(cases)} cases disagree:\n" + "\n".join(disagreements)
        )


class TestMinimatchSemantics:
    # Each row was checked against node's minimatch with {dot: true, nocase: true}.
    @pytest.mark.parametrize(
        ("pattern", "path", "expected"),
        [
            ("**/x", "/a/x", True),
            ("**/x", "/x", True),
            ("**/x", "/a/./x", False),  # `**` never crosses `.` or `..`
            ("**/x", "/a/../x", False),
            ("**/x", "/a//x", True),
            ("**/x", "/a/x/", True),
            ("**", "/a/.b/c", True),  # dot: true
            ("**/*.{jpg,png}", "/x/A.JPG", True),  # nocase: true
            ("**/@eaDir/**", "/x/@EADIR/y.jpg", True),
            ("**/a*c", "/x/abc", True),
            ("/mnt/media/**", "/mnt/media2/x", False),
            ("/mnt/a/../b/**", "/mnt/b/x", True),  # minimatch folds `a/..` in patterns
            ("**/a\\", "/x/a\\", True),  # a backslash ending a segment is literal
            ("#recycle/**", "/mnt/#recycle/x", False),  # a leading `#` is a comment
            ("!**/*.jpg", "/x/a.png", True),  # a leading `!` negates
            ("!**/*.jpg", "/x/a.jpg", False),
            ("!(a)", "/x/(a)", True),  # ...even when it looks like an extglob
            ("*.jpg", "/x/a.jpg", False),  # no matchBase: patterns see the full path
        ],
    )
    def test_matches_like_minimatch_when_pattern_is_an_edge_case(
        self, pattern: str, path: str, expected: bool
    ) -> None:
        assert ExclusionMatcher([pattern]).matches(path) is expected

    def test_matches_when_any_of_several_patterns_matches(self) -> None:
        matcher = ExclusionMatcher(["**/*.tif", "**/Raw/**", "!**/*"])
        assert matcher.matches("/m/a.TIF")
        assert matcher.matches("/m/raw/a.jpg")
        assert not matcher.matches("/m/a.jpg")

    def test_matches_nothing_when_there_are_no_patterns(self) -> None:
        assert not ExclusionMatcher([]).matches("/m/a.jpg")


class TestDefaults:
    @pytest.mark.parametrize(
        "path",
        [
            "/x/@eaDir/y.jpg",
            "/x/._a.jpg",
            "/x/#recycle/a.jpg",
            "/x/deep/#snapshot/daily/a.jpg",
            "/x/@EADIR/y.jpg",
        ],
    )
    def test_excluded_when_path_is_nas_metadata(self, path: str) -> None:
        assert ExclusionMatcher(DEFAULT_EXCLUSION_PATTERNS).matches(path)

    @pytest.mark.parametrize("path", ["/x/a.jpg", "/x/eaDir/a.jpg", "/x/recycle/a.jpg"])
    def test_kept_when_path_is_an_ordinary_photo(self, path: str) -> None:
        assert not ExclusionMatcher(DEFAULT_EXCLUSION_PATTERNS).matches(path)

    def test_defaults_are_immichs(self) -> None:
        assert DEFAULT_EXCLUSION_PATTERNS == [
            "**/@eaDir/**",
            "**/._*",
            "**/#recycle/**",
            "**/#snapshot/**",
        ]


# Pieces of patterns, folders and names that meet each other's literal runs.
SEGMENTS = ["**", "*", "@eaDir", "._*", "a*", "*a", "#recycle", "*.jpg", "K*", "x", "?a"]
FOLDERS = ["@eaDir", "@EADIR", "a", "A", "ka", "#recycle", "x._y", "\u017f", "b.jpg", "x"]


class TestProperties:
    @given(abs_paths)
    def test_brace_set_matches_the_union_of_its_members(self, path: str) -> None:
        only_a = ExclusionMatcher(["**/*.a"]).matches(path)
        only_b = ExclusionMatcher(["**/*.b"]).matches(path)
        assert ExclusionMatcher(["**/*.{a,b}"]).matches(path) == (only_a or only_b)

    @given(abs_paths)
    def test_pattern_list_matches_the_union_of_its_patterns(self, path: str) -> None:
        patterns = [*DEFAULT_EXCLUSION_PATTERNS, "**/a*/**", "/a/**/*.{x,b}"]
        together = ExclusionMatcher(patterns).matches(path)
        assert together == any(ExclusionMatcher([p]).matches(path) for p in patterns)

    @settings(max_examples=300)
    @given(
        st.lists(
            st.text(alphabet="aA.#@_ */?eDK\u017f", min_size=1, max_size=12), min_size=1, max_size=3
        ),
        st.lists(st.text(alphabet="aA.#@_ eDkKs-\u017f\u212a", max_size=8), max_size=5),
    )
    def test_literal_prefilter_never_changes_an_answer(
        self, patterns: list[str], parts: list[str]
    ) -> None:
        """A path without a plain pattern's literal runs is answered without the regexes:
        the answer is the one the regexes give (case folding and dots included)."""
        try:
            fast = ExclusionMatcher(patterns)
        except InvalidInput:
            return
        slow = ExclusionMatcher(patterns)
        slow._needles = None
        for path in ("/" + "/".join(parts), "/" + "/".join(parts) + "/x.jpg"):
            assert fast.matches(path) == slow.matches(path), (patterns, path)

    @settings(max_examples=500, deadline=None)  # compiling patterns is slow on a busy machine
    @given(
        st.lists(
            st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=3).map(
                lambda segments: "**/" + "/".join(segments)
            ),
            min_size=1,
            max_size=3,
        ),
        st.lists(st.sampled_from(FOLDERS), max_size=3),
        st.lists(st.sampled_from(FOLDERS) | st.text(alphabet="aA.#@_ eDks\n\u017f", min_size=1)),
    )
    def test_a_folder_of_names_is_matched_as_each_path(
        self, patterns: list[str], parts: list[str], names: list[str]
    ) -> None:
        """`matching` (one search of a folder's names) answers as `matches` on each path."""
        try:
            matcher = ExclusionMatcher(patterns)
        except InvalidInput:
            return
        folder = "/" + "/".join(parts)
        expected = [n for n in names if matcher.matches(f"{folder.rstrip('/')}/{n}")]
        assert matcher.matching(folder, names) == expected, (patterns, folder)

    def test_a_folder_of_names_is_matched_by_defaults_and_negations(self) -> None:
        names = ["a.jpg", "._a.jpg", "b.JPG", "c.tif"]
        assert ExclusionMatcher(DEFAULT_EXCLUSION_PATTERNS).matching("/m/x", names) == ["._a.jpg"]
        assert ExclusionMatcher(DEFAULT_EXCLUSION_PATTERNS).matching("/m/@eaDir", names) == names
        assert ExclusionMatcher(["!**/*.jpg"]).matching("/m", names) == ["c.tif"]
        assert ExclusionMatcher([]).matching("/m", names) == []

    @given(abs_paths)
    def test_escaped_path_matches_itself_only(self, path: str) -> None:
        matcher = ExclusionMatcher([escape_literal(path)])
        assert matcher.matches(path)
        assert not matcher.matches(path + "x")
        assert not matcher.matches(path + "/x")

    @settings(max_examples=300)
    @given(
        st.lists(
            st.sampled_from(["**", "*", "a", "A*", "*.b", "?", "[ab]", "{a,b}", "@(a|x)", ".*"]),
            min_size=1,
            max_size=4,
        ),
        st.booleans(),
        abs_paths,
    )
    def test_fast_form_agrees_with_exact_form_when_path_is_normalised(
        self, segments: list[str], absolute: bool, path: str
    ) -> None:
        pattern = ("/" if absolute else "**/") + "/".join(segments)
        matcher = ExclusionMatcher([pattern])
        assert matcher._lean.matches(path) == matcher._exact.matches(path)

    def test_fast_form_is_used_when_wcmatch_regex_has_the_known_shape(self) -> None:
        # Fails after a wcmatch upgrade that changes its regexes: the matcher stays correct
        # but loses its fast form, so update _WC_GLOBSTAR/_WC_SEPARATOR.
        regexes, _ = _translate("**/@eaDir/**")
        assert all(_lean(r) != r for r in regexes)


class TestValidatePattern:
    @pytest.mark.parametrize(
        ("pattern", "message"),
        [
            ("", "Exclusion pattern must not be empty"),
            ("   ", "Exclusion pattern must not be empty"),
            ("**/a\x00b", "Exclusion pattern must not contain a NUL byte"),
            ("a" * (MAX_PATTERN_LENGTH + 1), "at most 1024 characters"),
            ("{a,b}" * 11, "expands to more than 1000 patterns"),
            ("{1..5000}", "expands to more than 1000 patterns"),
        ],
    )
    def test_rejected_when_pattern_is_unusable(self, pattern: str, message: str) -> None:
        error = validate_pattern(pattern)
        assert error is not None
        assert message in error

    @pytest.mark.parametrize(
        "pattern",
        [
            *DEFAULT_EXCLUSION_PATTERNS,
            "**/*.{tif,jpg,}",
            "**/!(keep)/*.png",
            "**/{a,b",  # minimatch reads an unbalanced brace literally
            "**/[ab",  # ...and an unclosed bracket
            "a" * MAX_PATTERN_LENGTH,
        ],
    )
    def test_accepted_when_minimatch_can_read_it(self, pattern: str) -> None:
        assert validate_pattern(pattern) is None

    def test_unbalanced_brace_is_literal_when_used(self) -> None:
        matcher = ExclusionMatcher(["**/{a,b"])
        assert matcher.matches("/x/{a,b")
        assert not matcher.matches("/x/a")

    def test_matcher_raises_invalid_input_when_a_pattern_is_unusable(self) -> None:
        with pytest.raises(InvalidInput, match="must not be empty"):
            ExclusionMatcher(["**/ok", " "])


class TestEscapeLiteral:
    def test_path_with_every_special_character_matches_itself_when_escaped(self) -> None:
        path = '/mnt/it\'s "my" *{photos},(1) [2]?/!@#$%^&=+~|<>;/a b.jpg'
        pattern = escape_literal(path)
        assert validate_pattern(pattern) is None
        assert ExclusionMatcher([pattern]).matches(path)
        assert not ExclusionMatcher([pattern]).matches(path.replace("[2]", "2"))

    def test_leading_hash_and_bang_are_literal_when_escaped(self) -> None:
        assert ExclusionMatcher([escape_literal("#a")]).matches("#a")
        assert ExclusionMatcher([escape_literal("!a")]).matches("!a")
        assert not ExclusionMatcher([escape_literal("!a")]).matches("b")
