"""The path fence and Immich's import-path validation, against real files and symlinks."""

from __future__ import annotations

import errno
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.errors import InvalidInput, PathOutsideAllowedRoot
from shared.paths import (
    check_import_path_shape,
    is_inside,
    resolve_inside,
    validate_external_path,
    validate_import_path,
)

NO_EXTERNAL_PATH = (
    "No external path is set for this user; "
    "an admin must set one before external libraries can be used"
)


@dataclass(frozen=True)
class Tree:
    """A small library layout: the user's external path, a sibling, and a folder outside."""

    root: Path
    ext: Path
    outside: Path

    def outside_message(self) -> str:
        return f"Import path is outside the user's external path {self.ext}"


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    ext = tmp_path / "ext"
    (ext / "photos" / "2023").mkdir(parents=True)
    (ext / "photos" / "a.jpg").write_bytes(b"jpg")
    (ext / "upload").mkdir()
    (tmp_path / "ext2" / "photos").mkdir(parents=True)  # shares the prefix "ext"
    outside = tmp_path / "outside"
    (outside / "secret").mkdir(parents=True)
    (ext / "escape").symlink_to(outside)  # inside the fence, pointing out of it
    (ext / "inner").symlink_to(ext / "photos")  # inside, pointing inside
    (ext / "loop1").symlink_to(ext / "loop2")
    (ext / "loop2").symlink_to(ext / "loop1")
    (outside / "loop").symlink_to(outside / "loop")
    return Tree(root=tmp_path, ext=ext, outside=outside)


class TestIsInside:
    def test_inside_when_path_is_the_root_itself(self, tree: Tree) -> None:
        assert is_inside(str(tree.ext), str(tree.ext))
        assert is_inside(str(tree.ext), f"{tree.ext}/")

    def test_inside_when_path_is_below_root(self, tree: Tree) -> None:
        assert is_inside(str(tree.ext), str(tree.ext / "photos" / "2023"))

    def test_inside_when_path_does_not_exist_yet(self, tree: Tree) -> None:
        assert is_inside(str(tree.ext), str(tree.ext / "new" / "deeper"))

    def test_outside_when_sibling_shares_a_name_prefix(self, tree: Tree) -> None:
        assert not is_inside(str(tree.ext), str(tree.root / "ext2" / "photos"))

    def test_outside_when_dot_dot_climbs_out(self, tree: Tree) -> None:
        assert not is_inside(str(tree.ext), f"{tree.ext}/photos/../../outside")
        assert not is_inside(str(tree.ext), f"{tree.ext}/../../../../../../etc")

    def test_inside_when_dot_dot_climbs_back_in(self, tree: Tree) -> None:
        assert is_inside(str(tree.ext), f"{tree.ext}/photos/../../ext/photos")

    def test_inside_when_path_has_dots_and_double_slashes(self, tree: Tree) -> None:
        assert is_inside(str(tree.ext), f"{tree.ext}//photos/./2023/")

    def test_outside_when_symlink_points_outside(self, tree: Tree) -> None:
        assert not is_inside(str(tree.ext), str(tree.ext / "escape"))
        assert not is_inside(str(tree.ext), str(tree.ext / "escape" / "secret"))

    def test_outside_when_dot_dot_follows_an_escaping_symlink(self, tree: Tree) -> None:
        # The kernel takes `escape/..` as the parent of the link's target, not `ext`.
        assert not is_inside(str(tree.ext), f"{tree.ext}/escape/../outside")
        assert is_inside(str(tree.ext), f"{tree.ext}/escape/../ext")

    def test_inside_when_symlink_points_inside(self, tree: Tree) -> None:
        assert is_inside(str(tree.ext), str(tree.ext / "inner" / "2023"))

    def test_inside_when_root_is_given_through_a_symlink(self, tree: Tree) -> None:
        alias = tree.root / "alias"
        alias.symlink_to(tree.ext)
        assert is_inside(str(alias), str(tree.ext / "photos"))
        assert not is_inside(str(alias), str(tree.outside))

    def test_outside_when_path_runs_into_a_symlink_loop(self, tree: Tree) -> None:
        assert not is_inside(str(tree.ext), str(tree.ext / "loop1"))
        assert not is_inside(str(tree.ext), f"{tree.ext}/loop1/x/../..")

    def test_outside_when_path_has_a_nul_byte(self, tree: Tree) -> None:
        assert not is_inside(str(tree.ext), f"{tree.ext}/a\x00b")

    def test_inside_when_name_is_not_utf8(self, tree: Tree) -> None:
        raw = os.fsencode(tree.ext) + b"/x\xff"
        os.mkdir(raw)
        assert is_inside(str(tree.ext), os.fsdecode(raw))

    def test_everything_is_inside_when_root_is_slash(self, tree: Tree) -> None:
        assert is_inside("/", str(tree.outside))


class TestResolveInside:
    def test_returns_real_path_when_inside(self, tree: Tree) -> None:
        real = resolve_inside(str(tree.ext), f"{tree.ext}/inner/../photos/./2023")
        assert real == os.path.realpath(tree.ext / "photos" / "2023")

    def test_raises_when_symlink_escapes(self, tree: Tree) -> None:
        with pytest.raises(PathOutsideAllowedRoot) as caught:
            resolve_inside(str(tree.ext), str(tree.ext / "escape" / "secret"))
        assert isinstance(caught.value, InvalidInput)
        assert "is outside" in caught.value.detail

    def test_raises_when_path_is_a_symlink_loop(self, tree: Tree) -> None:
        with pytest.raises(PathOutsideAllowedRoot, match="cannot be resolved"):
            resolve_inside(str(tree.ext), str(tree.ext / "loop1" / "x"))


class TestValidateImportPath:
    def test_valid_when_path_is_a_readable_directory_inside(self, tree: Tree) -> None:
        assert validate_import_path(str(tree.ext / "photos"), str(tree.ext)) is None

    def test_valid_when_path_is_the_external_path_itself(self, tree: Tree) -> None:
        assert validate_import_path(str(tree.ext), str(tree.ext)) is None

    @pytest.mark.parametrize("path", ["", "   ", "\t\n"])
    def test_invalid_when_path_is_empty(self, tree: Tree, path: str) -> None:
        assert validate_import_path(path, str(tree.ext)) == "Import path must not be empty"

    def test_invalid_when_path_has_a_nul_byte(self, tree: Tree) -> None:
        message = validate_import_path(f"{tree.ext}/photos\x00", str(tree.ext))
        assert message == "Import path must not contain a NUL byte"

    def test_invalid_when_path_is_too_long(self, tree: Tree) -> None:
        path = str(tree.ext) + "/a" * 2500  # 5,000 characters of short components
        message = validate_import_path(path, str(tree.ext))
        assert message == "Import path must be shorter than 4096 bytes"

    def test_invalid_when_a_component_is_too_long(self, tree: Tree) -> None:
        message = validate_import_path(f"{tree.ext}/{'a' * 256}", str(tree.ext))
        assert message == "Each part of the import path must be at most 255 bytes"

    @pytest.mark.parametrize("path", ["C:\\photos", "\\\\server\\share", "/mnt\\photos"])
    def test_invalid_when_path_is_windows_style(self, tree: Tree, path: str) -> None:
        message = validate_import_path(path, str(tree.ext))
        assert message == "Import path must be an absolute POSIX path"

    @pytest.mark.parametrize("path", ["photos", "./photos", "../ext/photos"])
    def test_invalid_when_path_is_relative(self, tree: Tree, path: str) -> None:
        message = validate_import_path(path, str(tree.ext))
        assert message == f"Import path must be absolute, try {os.path.abspath(path)}"

    def test_invalid_when_path_is_the_upload_folder(self, tree: Tree) -> None:
        upload = str(tree.ext / "upload")
        for path in (upload, f"{upload}/library/x", f"{tree.ext}/inner/../upload"):
            message = validate_import_path(path, str(tree.ext), upload_root=upload)
            assert message == "Cannot use media upload folder for external libraries"

    def test_invalid_when_user_has_no_external_path(self, tree: Tree) -> None:
        assert validate_import_path(str(tree.ext / "photos"), None) == NO_EXTERNAL_PATH

    @pytest.mark.parametrize(
        "suffix", ["/../outside", "/photos/../../outside/secret", "/../../../../../../../etc"]
    )
    def test_invalid_when_dot_dot_escapes(self, tree: Tree, suffix: str) -> None:
        message = validate_import_path(f"{tree.ext}{suffix}", str(tree.ext))
        assert message == tree.outside_message()

    def test_invalid_when_symlink_inside_points_outside(self, tree: Tree) -> None:
        for path in (tree.ext / "escape", tree.ext / "escape" / "secret"):
            assert validate_import_path(str(path), str(tree.ext)) == tree.outside_message()

    def test_invalid_when_sibling_shares_a_name_prefix(self, tree: Tree) -> None:
        message = validate_import_path(str(tree.root / "ext2" / "photos"), str(tree.ext))
        assert message == tree.outside_message()

    def test_fence_is_checked_before_existence(self, tree: Tree) -> None:
        message = validate_import_path(str(tree.outside / "missing"), str(tree.ext))
        assert message == tree.outside_message()

    def test_invalid_when_path_does_not_exist(self, tree: Tree) -> None:
        message = validate_import_path(str(tree.ext / "missing"), str(tree.ext))
        assert message == "Path does not exist (ENOENT)"

    def test_invalid_when_path_is_a_file(self, tree: Tree) -> None:
        message = validate_import_path(str(tree.ext / "photos" / "a.jpg"), str(tree.ext))
        assert message == "Not a directory"

    def test_stat_error_is_reported_as_text_when_a_parent_is_a_file(self, tree: Tree) -> None:
        message = validate_import_path(str(tree.ext / "photos" / "a.jpg" / "x"), str(tree.ext))
        assert message is not None
        assert "Not a directory" in message
        assert "[Errno" in message

    def test_invalid_without_hanging_when_path_is_a_symlink_loop(self, tree: Tree) -> None:
        message = validate_import_path(str(tree.ext / "loop1"), str(tree.ext))
        assert message == "Import path cannot be resolved: Too many levels of symbolic links"

    def test_loop_outside_the_fence_is_reported_as_outside(self, tree: Tree) -> None:
        message = validate_import_path(str(tree.outside / "loop"), str(tree.ext))
        assert message == tree.outside_message()

    def test_valid_when_directory_name_is_not_utf8(self, tree: Tree) -> None:
        raw = os.fsencode(tree.ext) + b"/caf\xe9"
        os.mkdir(raw)
        assert validate_import_path(os.fsdecode(raw), str(tree.ext)) is None

    def test_invalid_when_directory_is_unreadable(self, tree: Tree) -> None:
        if os.geteuid() == 0:
            pytest.skip("root can read a mode-000 directory, so the check cannot fail here")
        locked = tree.ext / "locked"
        locked.mkdir(mode=0)
        try:
            message = validate_import_path(str(locked), str(tree.ext))
        finally:
            locked.chmod(0o700)
        assert message == "Lacking read permission for folder"


class TestCheckImportPathShape:
    def test_valid_when_path_does_not_exist_yet(self, tree: Tree) -> None:
        assert check_import_path_shape(str(tree.ext / "later" / "photos"), str(tree.ext)) is None

    def test_valid_when_path_is_a_file(self, tree: Tree) -> None:
        assert check_import_path_shape(str(tree.ext / "photos" / "a.jpg"), str(tree.ext)) is None

    def test_invalid_when_missing_path_sits_below_an_escaping_symlink(self, tree: Tree) -> None:
        message = check_import_path_shape(str(tree.ext / "escape" / "new"), str(tree.ext))
        assert message == tree.outside_message()

    def test_runs_input_checks_first(self, tree: Tree) -> None:
        assert check_import_path_shape("", None) == "Import path must not be empty"
        assert check_import_path_shape("rel", None) == (
            f"Import path must be absolute, try {os.path.abspath('rel')}"
        )
        assert check_import_path_shape("/x", None) == NO_EXTERNAL_PATH


class TestValidateExternalPath:
    @pytest.mark.parametrize("path", ["/", "/mnt/media", "/home/u/.photos"])
    def test_valid_when_absolute_and_normalised(self, path: str) -> None:
        assert validate_external_path(path) is None

    @pytest.mark.parametrize(
        ("path", "message"),
        [
            ("", "External path must not be empty"),
            ("/mnt/\x00", "External path must not contain a NUL byte"),
            ("mnt/media", "External path must be absolute"),
            ("C:\\media", "External path must be an absolute POSIX path"),
            ("/mnt/media/", "External path must be normalised, try /mnt/media"),
            ("/mnt/./media", "External path must be normalised, try /mnt/media"),
            ("/mnt/x/../media", "External path must be normalised, try /mnt/media"),
            ("//mnt//media", "External path must be normalised, try /mnt/media"),
        ],
    )
    def test_invalid_when_not_an_absolute_normal_path(self, path: str, message: str) -> None:
        assert validate_external_path(path) == message


# --- property: whatever validate_import_path accepts really is inside the fence -------------

_LINK_PLACES = ["ext", "ext/d1", "ext/d1/d2", "out"]
_LINK_TARGETS = [
    "{out}",  # absolute, outside
    "{out}/o1",
    "{ext}/d1",  # absolute, inside
    "..",  # relative: may climb out of ext when placed at ext/
    "../..",
    "d1",
    "../out",
    "{root}",
    "/",
    "link0",  # chains and loops between the generated links
    "link1",
    "../link0",
]
_STEPS = ["d1", "d2", "o1", "..", ".", "", "link0", "link1", "link2", "missing"]


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    links=st.lists(
        st.tuples(st.sampled_from(_LINK_PLACES), st.sampled_from(_LINK_TARGETS)),
        max_size=3,
    ),
    start=st.sampled_from(["ext", "ext/d1", "ext/d1/d2", "root"]),
    steps=st.lists(st.sampled_from(_STEPS), max_size=8),
)
def test_accepted_path_is_inside_the_external_path_whatever_the_links(
    links: list[tuple[str, str]], start: str, steps: list[str]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ext, out = root / "ext", root / "out"
        (ext / "d1" / "d2").mkdir(parents=True)
        (out / "o1").mkdir(parents=True)
        names = {"root": str(root), "ext": str(ext), "out": str(out)}
        for i, (place, target) in enumerate(links):
            link = root / place / f"link{i}"
            if not os.path.lexists(link):
                link.symlink_to(target.format(**names))
        base = str(root) if start == "root" else str(root / start)
        path = base + "/" + "/".join(steps)

        accepted = validate_import_path(path, str(ext)) is None
        shape_ok = check_import_path_shape(path, str(ext)) is None
        real = os.path.realpath(path)
        fence = os.path.realpath(ext)
        inside = real == fence or real.startswith(fence + "/")

        if accepted or shape_ok:
            assert inside, f"{path} was accepted but resolves to {real}, outside {fence}"
        if accepted:
            assert os.path.isdir(path)
        # And the fence is not over-eager: a real directory inside is accepted.
        if inside and os.path.isdir(path):
            assert accepted, f"{path} -> {real} is a directory inside {fence} but was refused"
        _assert_resolves_like_the_kernel(path)


def _assert_resolves_like_the_kernel(path: str) -> None:
    """resolve_inside agrees with realpath(strict=True), and refuses exactly the loops."""
    try:
        expected = os.path.realpath(path, strict=True)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            with pytest.raises(PathOutsideAllowedRoot, match="cannot be resolved"):
                resolve_inside("/", path)
            return
        expected = None  # a missing component: realpath and we both go on by name
    try:
        got = resolve_inside("/", path)
    except PathOutsideAllowedRoot:
        # Only a loop met after a missing component (`missing/../loop`) may be refused here.
        assert expected is None, f"{path} resolves to {expected} but was refused"
        return
    assert got == (expected or os.path.realpath(path)), f"{path} resolved to {got}"
