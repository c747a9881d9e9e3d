"""Exclusion patterns matched on full paths with minimatch `{dot: true, nocase: true}` semantics."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from typing import Final

import bracex
import regex
from wcmatch import glob

from shared.errors import InvalidInput

# Known differences from minimatch, found by differential fuzzing against node's minimatch. None
# occurs in ../shared/reference/glob-truth.json, and all need unusual patterns:
# - an extglob that can match nothing (`?(a)`, `*(a)`, `!(a)`) standing alone as a segment:
#   minimatch lets it match only a truly empty segment (the root of an absolute path); wcmatch
#   lets `?(a)` and `*(a)` match "between two slashes" and never lets `!(a)` match nothing;
# - two or more `!(...)` groups in one segment; an unclosed `[` or `(` followed by an extglob;
# - `\\` in a pattern that also has a `{...}` group (minimatch's brace step unescapes it), and a
#   brace group that does not expand (`{a}`) ahead of one that does (minimatch stops there);
# - POSIX classes (`[[:alpha:]]`) and case folding outside ASCII (Python's rules, not JS's);
# - minimatch's own bugs with `\|` and `\-` outside a class.

# Immich's defaults for a new library (server library.dto.ts). A list because request DTOs use
# it as a default value; copy it before changing it.
DEFAULT_EXCLUSION_PATTERNS: Final[list[str]] = [
    "**/@eaDir/**",
    "**/._*",
    "**/#recycle/**",
    "**/#snapshot/**",
]

MAX_PATTERN_LENGTH: Final = 1024
# wcmatch's own default; it also bounds the size of the regex we build for one pattern.
MAX_BRACE_EXPANSIONS: Final = 1000

# wcmatch turns a pattern into a backtracking regex, and extglobs with alternatives that can
# match the same text (`+(a|aa)`, `!(*(a|aa)b)`) backtrack exponentially on a long name: a
# 172-character pattern of 24 `?(a|aa)` kept a scanner at 100% CPU for good. We match with the
# `regex` module, which defuses many such shapes, releases the GIL while it matches (so other
# libraries' folders go on in other threads) and can stop a match after a time; and the API
# refuses patterns with more extglobs than anyone writes by hand. Bounds on work, not on what
# can be expressed: glob-truth.json uses at most one extglob per pattern, never nested.
MAX_EXTGLOBS: Final = 8
MAX_EXTGLOB_DEPTH: Final = 2
# A library's patterns are compiled together; their regexes may total this many characters
# (compiling takes about a second per 250,000; the defaults take 600).
MAX_REGEX_CHARS: Final = 250_000
# One match normally takes microseconds; past this (wall time) it is abandoned as hostile.
MATCH_TIMEOUT: Final = 0.1
CONFIRM: Final = 20  # a match past MATCH_TIMEOUT is tried once more with 20 times as long

# minimatch {dot: true, nocase: true} maps onto: `**` spans directories (GLOBSTAR), `*`, `?`,
# `[...]` and `**` reach dot files (DOTGLOB), case-insensitive (IGNORECASE), `@(a|b)`-style
# groups (EXTGLOB; minimatch has them on by default), `\` escapes and `/` is the only separator
# (FORCEUNIX). Braces are expanded by us with bracex, the library behind wcmatch's BRACE flag,
# so that minimatch's `..` folding can run on each expansion. NEGATE is left off on purpose:
# minimatch negates on any leading `!`, even `!(...)`, which wcmatch would read as an extglob,
# so we count the `!`s ourselves.
GLOB_FLAGS: Final = glob.GLOBSTAR | glob.DOTGLOB | glob.IGNORECASE | glob.EXTGLOB | glob.FORCEUNIX

_SLASHES = re.compile(r"/+")
# minimatch splits a pattern on `/` before it reads escapes, so a backslash that ends a segment
# (an odd run before `/` or the end) escapes nothing and is a literal backslash; wcmatch would
# read `\/` as an escaped separator and drop a final `\`. Doubling it says "literal" to wcmatch.
_DANGLING_BACKSLASH = re.compile(r"(?<!\\)(\\(?:\\\\)*)(?=/|\Z)")
# Characters with a meaning to minimatch or wcmatch anywhere in a pattern. `#` and `!` matter
# only at the start, but escaping them everywhere is harmless and simpler.
_GLOB_SPECIAL = re.compile(r"([\\*?\[\]{}()!@+|,#])")

# wcmatch makes every `**` refuse `.`/`..` segments and every separator accept `//`, one
# lookahead per character. A real path has neither, and for such paths the lean form gives the
# same answers two to three times faster. Paths that are not normalised use the exact form.
_WC_GLOBSTAR: Final = r"(?:(?!(?:[/]|^)(?:\.{1,2})(?:$|[/])).)*?"
_WC_SEPARATOR: Final = r"(?:^|[/]+)"
_DOT_SEGMENT = re.compile(r"(?:^|/)\.\.?(?:/|$)")


def _fold_dot_dot(expansion: str) -> str:
    """Apply minimatch's default optimisation (level 1): drop `name/..`, merge `**/**`."""
    if ".." not in expansion and "**/**" not in expansion:
        return expansion
    parts: list[str] = []
    for part in _SLASHES.split(expansion):
        prev = parts[-1] if parts else None
        if part == "**" and prev == "**":
            continue
        if part == ".." and prev and prev not in ("..", ".", "**"):
            parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


def _translate(pattern: str) -> tuple[list[str], bool]:
    """Regexes (one per brace expansion) for one pattern as minimatch reads it, and its negation.

    Raises bracex.ExpansionLimitException or wcmatch's ValueError for unusable patterns.
    """
    # minimatch: a leading `#` makes the pattern a comment, which matches nothing.
    if pattern.startswith("#"):
        return [], False
    body = pattern.lstrip("!")
    negate = (len(pattern) - len(body)) % 2 == 1
    regexes: list[str] = []
    seen: set[str] = set()
    expansions = bracex.iexpand(
        body, keep_escapes=True, limit=MAX_BRACE_EXPANSIONS, return_empty=True
    )
    for expansion in expansions:
        folded = _fold_dot_dot(expansion)
        if folded in seen:
            continue
        seen.add(folded)
        if folded == "":
            # minimatch reads an empty body (`!`, `a/..`) as one empty segment, which matches
            # "" and "/" (a trailing slash is always allowed).
            regexes.append("/*")
            continue
        folded = _DANGLING_BACKSLASH.sub(r"\g<1>\\", folded)
        positive, _ = glob.translate(folded, flags=GLOB_FLAGS, limit=0)
        regexes.extend(positive)
    return regexes, negate


def _lean(regex: str) -> str:
    """The same regex for normalised paths only (see _WC_GLOBSTAR)."""
    return regex.replace(_WC_GLOBSTAR, ".*").replace(_WC_SEPARATOR, "(?:^|/)")


class MatchTooSlow(Exception):
    """Raised by ExclusionMatcher.matches when matching one path ran past its time bound, and
    from then on by every call on that matcher: its patterns are hostile (or pathological), and
    the caller records a problem instead of spending the bound again on each path."""


class _RegexSet:
    """Compiled form of a pattern list: one alternation for plain patterns, one per negated."""

    __slots__ = ("negated", "positive")

    def __init__(self, positive: list[str], negated: list[list[str]]) -> None:
        self.positive = _alternation(positive)
        # A negated pattern whose body matches nothing (never the case today) excludes all.
        self.negated = tuple(_alternation(n) or regex.compile("(?!)") for n in negated)

    def matches(self, path: str, timeout: float = MATCH_TIMEOUT) -> bool:
        """Raises TimeoutError once the matching has taken `timeout` seconds in all."""
        positive = self.positive
        if not self.negated:
            return positive is not None and _fullmatch(positive, path, timeout)
        deadline = time.monotonic() + timeout
        if positive is not None and _fullmatch(positive, path, timeout):
            return True
        for n in self.negated:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("regex timed out")
            if not _fullmatch(n, path, left):
                return True
        return False


def _fullmatch(compiled: regex.Pattern[str], path: str, timeout: float) -> bool:
    # concurrent: the GIL is released while matching, so a slow match stalls only its thread.
    return compiled.fullmatch(path, timeout=timeout, concurrent=True) is not None


def _alternation(regexes: list[str]) -> regex.Pattern[str] | None:
    """One regex for many translated patterns (each carries its own scoped flags)."""
    if not regexes:
        return None
    return regex.compile("|".join(f"(?:{r})" for r in regexes))


_PLAIN = re.compile(r"[A-Za-z0-9_.#@/*? -]+")


def _needles(patterns: tuple[str, ...]) -> tuple[tuple[str, ...], ...] | None:
    """For each pattern, the literal runs (casefolded) that every path it matches contains;
    None when a pattern is not plain (a class, brace, extglob, escape or negation) or has no
    such run (or a `.` or `..` segment), and every path goes to the regexes.

    This is what keeps Immich's defaults (`**/@eaDir/**`, `**/._*`, ...) cheap: a path that
    lacks `@eadir`, `._`, `#recycle` and `#snapshot` cannot match them, so the regexes (about
    30 us a path) are skipped for almost every file. Runs of dots alone are not required."""
    out = []
    for pattern in patterns:
        if not _PLAIN.fullmatch(pattern) or {".", ".."} & set(pattern.split("/")):
            return None  # `a/../b` matches paths without `a`
        runs = tuple(r.casefold() for r in re.split(r"[*?/]", pattern) if r.strip("."))
        if not runs:
            return None
        out.append(runs)
    return tuple(out) or None


class ExclusionMatcher:
    """Decides whether a full path is excluded by any of a library's exclusion patterns.

    Build it once per scan: `matches` is one `fullmatch` of a single compiled alternation (plus
    one per negated pattern, which are rare). A leading `!` negates a pattern as in minimatch:
    `!**/*.jpg` excludes every path that is not a jpg. Raises InvalidInput for a pattern that
    `validate_pattern` rejects. It does not apply the API's bounds (`validate_patterns`), so
    patterns stored before them still work; a match that runs past `timeout` seconds raises
    MatchTooSlow, and so does every later call.
    """

    __slots__ = ("_exact", "_lean", "_needles", "_runs", "_too_slow", "patterns", "timeout")

    def __init__(
        self, patterns: list[str] | tuple[str, ...], timeout: float = MATCH_TIMEOUT
    ) -> None:
        self.patterns: tuple[str, ...] = tuple(patterns)
        self.timeout = timeout
        self._too_slow: str | None = None
        positive: list[str] = []
        negated: list[list[str]] = []
        for pattern in self.patterns:
            error = validate_pattern(pattern)
            if error is not None:
                raise InvalidInput(f"Invalid exclusion pattern {pattern!r}: {error}")
            regexes, negate = _translate(pattern)
            if negate:
                negated.append(regexes)
            else:
                positive.extend(regexes)
        self._needles = _needles(self.patterns)
        self._runs = frozenset(r for runs in self._needles or () for r in runs)
        self._exact = _RegexSet(positive, negated)
        self._lean = _RegexSet(
            [_lean(r) for r in positive], [[_lean(r) for r in n] for n in negated]
        )

    def matches(self, path: str) -> bool:
        """True when `path` (absolute, `/`-separated) is excluded by at least one pattern.

        Raises MatchTooSlow when this match, or an earlier one, ran past the time bound."""
        if self._too_slow is not None:
            raise MatchTooSlow(self._too_slow)
        if self._needles is not None:
            folded = path.casefold()
            if not any(all(n in folded for n in runs) for runs in self._needles):
                return False
        exact = "//" in path or (("/." in path or path[:1] == ".") and _DOT_SEGMENT.search(path))
        regexes = self._exact if exact else self._lean
        try:
            return regexes.matches(path, self.timeout)
        except TimeoutError:
            pass
        # A stalled machine (a busy CPU, a pause) can make an ordinary match miss its bound:
        # only a match that misses a bound CONFIRM times longer is taken for a hostile one.
        try:
            return regexes.matches(path, self.timeout * CONFIRM)
        except TimeoutError as exc:
            self._too_slow = (
                f"exclusion patterns took more than {self.timeout * CONFIRM:g} s to match one "
                f"path ({len(path)} characters); they are not used until they change"
            )
            raise MatchTooSlow(self._too_slow) from exc

    def matching(self, folder: str, names: list[str]) -> list[str]:
        """The names of `names` (entries directly in `folder`) whose path `folder/name`
        `matches`, with the same answers. Literal runs hold no `/`, so a run lies in the
        folder or in the name: a folder that holds no pattern's runs whole, and whose names
        hold none, is answered by one search of its names, not one match per file.
        Raises MatchTooSlow."""
        if self._too_slow is not None:
            raise MatchTooSlow(self._too_slow)
        if not self.patterns or not names:
            return []
        prefix = folder.rstrip("/")
        if self._needles is not None:
            here = prefix.casefold()
            if not any(all(n in here for n in runs) for runs in self._needles):
                joined = "\n".join(names).casefold()  # no run holds a newline
                if not any(r in joined for r in self._runs):
                    return []
                names = [x for x in names if any(r in x.casefold() for r in self._runs)]
        return [x for x in names if self.matches(f"{prefix}/{x}")]

    def excludes(self, path: str, root: str) -> bool:
        """True when `path` is excluded as Immich's crawler excludes it: the path matches, or a
        folder on its way below `root` (the import path it was found under) does, so that
        `**/directoryA` drops every file beneath such a folder (fast-glob's `ignore` does not
        enter an ignored folder). `root` itself is never tested: a crawl starts there.

        The scanner tests a folder once (`excludes_folder`) and each of its files with
        `matches`; the watcher, which meets single files, calls this. Raises MatchTooSlow."""
        return self.matches(path) or self.excludes_folder(os.path.dirname(path), root)

    def excludes_folder(self, folder: str, root: str) -> bool:
        """True when `folder`, or a folder between it and `root` (exclusive), matches: every
        file beneath it is excluded. Raises MatchTooSlow."""
        if not self.patterns:
            return False
        prefix = root.rstrip("/") + "/"
        while folder.startswith(prefix) and len(folder) > len(prefix):
            if self.matches(folder):
                return True
            folder = os.path.dirname(folder)
        return False

    def __repr__(self) -> str:
        return f"ExclusionMatcher({list(self.patterns)!r})"


def validate_pattern(pattern: str) -> str | None:
    """Return why an exclusion pattern is unusable, or None when it is fine."""
    error, _ = _check(pattern)
    return error


def validate_patterns(patterns: Sequence[str]) -> tuple[str, str] | None:
    """Why a library's exclusion patterns are refused at the API, or None when they are fine.

    Applies `validate_pattern` and the bounds on the work matching can take: extglobs per
    pattern and their nesting, and the size of the regex compiled for all of them (checked
    before compiling). Blocking: run it off the event loop. Returns (the first pattern at
    fault, the message).
    """
    room = MAX_REGEX_CHARS
    for pattern in patterns:
        error, regexes = _check(pattern, room=room)
        if error is not None:
            return pattern, error
        room -= sum(len(r) for r in regexes)
    return None


def _check(pattern: str, *, room: int | None = None) -> tuple[str | None, list[str]]:
    """(why the pattern is unusable or None, its regexes); with `room` (regex characters
    left to the list) it also applies the API's bounds."""
    if not pattern or pattern.isspace():
        return "Exclusion pattern must not be empty", []
    if "\x00" in pattern:
        return "Exclusion pattern must not contain a NUL byte", []
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"Exclusion pattern must be at most {MAX_PATTERN_LENGTH} characters", []
    if room is not None:
        groups, depth = _extglob_shape(pattern)
        if groups > MAX_EXTGLOBS:
            return (
                f"Exclusion pattern must have at most {MAX_EXTGLOBS} extglob groups such as @(a|b)"
            ), []
        if depth > MAX_EXTGLOB_DEPTH:
            return (
                f"Exclusion pattern must not nest extglob groups more than {MAX_EXTGLOB_DEPTH} deep"
            ), []
    try:
        regexes, _ = _translate(pattern)
        if room is not None and sum(len(r) for r in regexes) > room:
            return (
                "Exclusion patterns are too complex: with their brace expansions they make a "
                f"regular expression of more than {MAX_REGEX_CHARS} characters"
            ), []
        _alternation(regexes)
    except bracex.ExpansionLimitException:
        return f"Exclusion pattern expands to more than {MAX_BRACE_EXPANSIONS} patterns", []
    except (ValueError, re.error, regex.error) as exc:
        # wcmatch raises ValueError subclasses for patterns it cannot parse.
        return f"Exclusion pattern is malformed: {exc}", []
    return None, regexes


def _extglob_shape(pattern: str) -> tuple[int, int]:
    """(number of extglob groups, deepest nesting of them) in a pattern, counted on the raw
    text: a `?(` inside a bracket expression counts too, which only errs on the safe side."""
    groups = deepest = 0
    opened: list[bool] = []  # one per open parenthesis: does it start an extglob?
    previous = ""
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            previous = ""
            i += 2
            continue
        if char == "(":
            extglob = previous in ("?", "*", "+", "@", "!")
            opened.append(extglob)
            if extglob:
                groups += 1
                deepest = max(deepest, sum(opened))
        elif char == ")" and opened:
            opened.pop()
        previous = char
        i += 1
    return groups, deepest


def escape_literal(path: str) -> str:
    """Escape glob syntax in `path` so that, used as a pattern, it matches only itself."""
    return _GLOB_SPECIAL.sub(r"\\\1", path)
