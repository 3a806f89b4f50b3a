"""synchro.names: the site code, the Siège's address and the file names, each rule once.

The settings, the windows, the token, the FTP server and the engine all call these; the
last test checks that nobody writes the rules again."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from synchro.names import (
    FileName,
    ack_name,
    is_site_code,
    package_name,
    parse_address,
    parse_port,
    published_glob,
    published_name,
    read_ack_name,
    read_package_name,
    read_published_name,
    split_address,
)

PACKAGE = Path(__file__).resolve().parents[1] / "synchro"


@pytest.mark.parametrize("code", ["3615", "A", "magasin_2", "SIEGE-NORD", "x" * 32, "0001"])
def test_valid_site_codes(code: str) -> None:
    assert is_site_code(code)


@pytest.mark.parametrize("code", ["", " 3615", "36 15", "x" * 33, "é", "a/b", "a.b", "3615\n"])
def test_invalid_site_codes(code: str) -> None:
    assert not is_site_code(code)


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("siege.example.com", ("siege.example.com", None)),
        (" 192.168.0.24:2121 ", ("192.168.0.24", "2121")),
        ("hote: 21", ("hote", "21")),
        ("hote:", ("hote", "")),
        ("::1", ("::1", None)),  # IPv6: several ':' and no port
        ("fe80::1:2", ("fe80::1:2", None)),
        ("", ("", None)),
    ],
)
def test_split_address(text: str, parts: tuple[str, str | None]) -> None:
    assert split_address(text) == parts


def test_parse_address_takes_the_default_port_and_checks_the_given_one() -> None:
    assert parse_address("siege", 2121) == ("siege", 2121)
    assert parse_address("siege:21", 2121) == ("siege", 21)
    assert parse_address("::1", 990) == ("::1", 990)
    for bad in ("siege:", "siege:0", "siege:65536", "siege:x", "siege:٣", ":21", ""):
        with pytest.raises(ValueError):
            parse_address(bad, 21)


def test_parse_port() -> None:
    assert parse_port("1") == 1
    assert parse_port("65535") == 65535
    for bad in ("0", "65536", "-1", "", "1e3", "²"):
        with pytest.raises(ValueError):
            parse_port(bad)


def test_package_names_round_trip() -> None:
    assert package_name("3615", 42) == "3615-00000042.pkg"
    assert read_package_name("3615-00000042.pkg") == FileName("3615", 42)
    assert published_name("SIEGE", "3615", 7) == "SIEGE-3615-00000007.pkg"
    assert read_published_name("SIEGE-3615-00000007.pkg", "3615") == FileName("SIEGE", 7)
    assert ack_name("3615", 7) == "ACK-3615-00000007.json"
    assert read_ack_name("ACK-3615-00000007.json") == FileName("3615", 7)
    # codes with '-' are read back whole
    assert read_package_name("A-B-00000001.pkg") == FileName("A-B", 1)
    assert read_ack_name("ACK-A-B-00000003.json") == FileName("A-B", 3)
    assert read_published_name("SIEGE-NORD-A-B-00000002.pkg", "A-B") == FileName("SIEGE-NORD", 2)


@pytest.mark.parametrize(
    "name",
    ["3615-42.pkg", "3615-00000042.pkg.part", "3615-00000042.json", "ACK-3615-00000042.json", ""],
)
def test_other_names_are_not_packages(name: str) -> None:
    assert read_package_name(name) is None or name == "ACK-3615-00000042.json"
    assert read_published_name(name, "3615") is None


def test_a_package_for_another_site_is_not_ours() -> None:
    assert read_published_name("SIEGE-3616-00000001.pkg", "3615") is None
    assert read_published_name("3615-00000001.pkg", "3615") is None  # a site's own package
    assert read_ack_name("ACK-3615-1.json") is None
    assert read_ack_name("3615-00000001.pkg") is None


def test_the_glob_finds_what_published_name_builds(tmp_path: Path) -> None:
    (tmp_path / published_name("SIEGE", "3615", 1)).touch()
    (tmp_path / published_name("SIEGE", "3616", 1)).touch()
    (tmp_path / package_name("3615", 1)).touch()
    found = [p.name for p in tmp_path.glob(published_glob("3615"))]
    assert found == ["SIEGE-3615-00000001.pkg"]


def test_no_module_writes_these_rules_again() -> None:
    """The site-code class, a ``host:port`` split and the 8-digit file names live only in
    synchro/names.py."""
    rules = {
        "site code": re.compile(r"A-Za-z0-9_-\]\{1,32\}|\[A-Za-z0-9_-\]\+\)-"),
        "address split": re.compile(r"""(partition|split)\(":"\)"""),
        "sequence in a name": re.compile(r"\{[a-z_]*seq[a-z_]*:08d\}|\\d\{8\}"),
    }
    other_colons = {"faults.py"}  # a fault spec ``name:nth``, not an address
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        where = str(path.relative_to(PACKAGE))
        if where == "names.py":
            continue
        text = path.read_text(encoding="utf-8")
        for rule, pattern in rules.items():
            if pattern.search(text) and not (rule == "address split" and where in other_colons):
                found.append(f"{where}: {rule}")
    assert not found, "\n".join(found)
