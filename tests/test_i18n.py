"""tools/i18n.py: the check names every untranslated or fuzzy message, per page."""

import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po
from sphinx.util.i18n import format_date

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import i18n  # noqa: E402


def write(path, messages):
    catalog = Catalog(locale="zh_CN")
    for msgid, msgstr, fuzzy in messages:
        catalog.add(msgid, msgstr, flags=("fuzzy",) if fuzzy else ())
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        write_po(f, catalog)


@pytest.fixture
def catalogues(tmp_path, monkeypatch):
    monkeypatch.setattr(i18n, "CATALOGUES", tmp_path / "po")
    monkeypatch.setattr(i18n, "ROOT", tmp_path)
    pot = tmp_path / "pot"
    write(
        pot / "chapters" / "ch.pot", [("Dropout", "", False), ("Two ways", "", False)]
    )
    return pot


def test_translated_catalogue_passes(catalogues, tmp_path):
    write(
        tmp_path / "po" / "chapters" / "ch.po",
        [("Dropout", "暂退法", False), ("Two ways", "两种方法", False)],
    )
    assert i18n.problems(catalogues) == []


def test_untranslated_and_fuzzy_messages_are_named(catalogues, tmp_path):
    write(
        tmp_path / "po" / "chapters" / "ch.po",
        [("Dropout", "", False), ("Two ways", "两种方法", True)],
    )
    found = i18n.problems(catalogues)
    assert "chapters/ch: untranslated: 'Dropout'" in found
    assert "chapters/ch: fuzzy (English changed): 'Two ways'" in found


def test_changed_english_is_untranslated(catalogues, tmp_path):
    # The .po still has the old wording: the new message has no translation.
    write(
        tmp_path / "po" / "chapters" / "ch.po",
        [("Dropout!", "暂退法", False), ("Two ways", "两种方法", False)],
    )
    assert i18n.problems(catalogues) == ["chapters/ch: untranslated: 'Dropout'"]


def test_obsolete_copy_of_a_live_message_is_named(catalogues, tmp_path):
    po = tmp_path / "po" / "chapters" / "ch.po"
    write(po, [("Dropout", "暂退法", False), ("Two ways", "两种方法", False)])
    with po.open("a", encoding="utf-8") as f:  # as msgmerge leaves a re-added message
        f.write('\n#~ msgid "Dropout"\n#~ msgstr "暂退法"\n')
    assert i18n.problems(catalogues) == [
        "chapters/ch: obsolete copy of a live message: 'Dropout'"
    ]


def test_missing_catalogue_is_named(catalogues):
    assert any("no catalogue" in p for p in i18n.problems(catalogues))


@pytest.fixture
def configs(tmp_path, monkeypatch):
    """(the Chinese config that `i18n.py config` writes, the English _config.yml)."""
    monkeypatch.setattr(i18n, "ZH_CONFIG", tmp_path / "_config.zh.yml")
    monkeypatch.setattr(i18n, "ROOT", ROOT)
    i18n.config()
    zh = yaml.safe_load((tmp_path / "_config.zh.yml").read_text())
    return zh, yaml.safe_load((ROOT / "_config.yml").read_text())


def test_config_is_the_english_one_in_chinese(configs):
    zh, en = configs
    assert zh["sphinx"]["config"]["language"] == "zh_CN"
    assert zh["sphinx"]["config"]["locale_dirs"] == [str(ROOT / "locales")]
    assert zh["repository"] == en["repository"], (
        "the Chinese pages' buttons and Colab use the same repository"
    )
    assert all(Path(p).is_absolute() for p in zh["sphinx"]["local_extensions"].values())


def test_config_gives_a_chinese_author_and_date(configs):
    # The title page's date as Sphinx formats it, month and day without a leading zero;
    # the English edition keeps its own author and Sphinx's default date.
    zh, en = configs
    assert zh["author"] == "dropkit 开发者"
    assert en["author"] == "The dropkit developers"
    assert "today_fmt" not in en["sphinx"]["config"]
    day = datetime(2026, 1, 9, 12, tzinfo=timezone.utc)
    today = format_date(zh["sphinx"]["config"]["today_fmt"], date=day, language="zh_CN")
    assert today == "2026 年 1 月 9 日"
