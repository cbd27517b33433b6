"""The Chinese edition (中文版): one set of notebooks, two languages, Sphinx's gettext.

The English text of every page (Markdown cells, headings, captions, exercises,
solutions) is extracted into message catalogues; the translations live in
``locales/zh_CN/LC_MESSAGES/<page>.po``. Code cells and their outputs are not
translated: the Chinese pages show the same code and the same stored outputs.

    python tools/i18n.py update [PAGE ...]  # add new English messages to the .po files
    python tools/i18n.py check    # exit 1 naming every message not translated or fuzzy
    python tools/i18n.py stats    # translated / total, per page
    python tools/i18n.py config   # write _build/_config.zh.yml for the Chinese build

`make book` builds English into _build/html and Chinese into _build/html/zh. When the
English of a page changes, its message changes, the old translation no longer matches,
and `check` (run by `make test`) fails with the page and the message: translate it
(`update` marks a reworded message fuzzy, with the old translation as a starting point),
then remove the ``#, fuzzy`` flag.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parent.parent
LOCALE = "zh_CN"
LOCALES = ROOT / "locales"
CATALOGUES = LOCALES / LOCALE / "LC_MESSAGES"
ZH_CONFIG = ROOT / "_build" / "_config.zh.yml"
BIN = Path(sys.executable).parent

# What changes for the Chinese build; everything else is _config.yml's.
ZH_TITLE = "dropkit：暂退法，执行并检验"
# The author line (the pages' footer, the PDF's title page).
ZH_AUTHOR = "dropkit 开发者"
# The PDF's date: Sphinx's Chinese default, "%Y 年 %m 月 %d 日", pads month and day with
# a zero ("12 月 06 日"); %-m and %-d do not (sphinx.util.i18n.format_date).
ZH_TODAY_FMT = "%Y 年 %-m 月 %-d 日"
ZH_PDF = (
    "dropkit-zh"  # the Chinese PDF's name (make pdf), beside the English dropkit.pdf
)


def extract(out: Path) -> Path:
    """Build the message templates (.pot) of every page into ``out``; return their
    folder."""
    subprocess.run(
        [
            str(BIN / "jupyter-book"),
            "build",
            str(ROOT),
            "--builder",
            "custom",
            "--custom-builder",
            "gettext",
            "--path-output",
            str(out),
            "-q",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return out / "_build" / "gettext"


def templates(folder: Path) -> dict[str, Path]:
    """Page name (``chapters/drop_path``) -> its .pot file."""
    return {
        str(p.relative_to(folder).with_suffix("")): p
        for p in sorted(folder.rglob("*.pot"))
    }


def read(path: Path):
    with path.open("rb") as f:
        return read_po(f)


def problems(pot_folder: Path) -> list[str]:
    """Every message of the current English text that has no usable translation."""
    found = []
    for page, pot in templates(pot_folder).items():
        po_path = CATALOGUES / f"{page}.po"
        if not po_path.exists():
            found.append(
                f"{page}: no catalogue {po_path.relative_to(ROOT)} (run update)"
            )
            continue
        po = read(po_path)
        # An obsolete entry (#~) with the msgid of a live one: gettext's msgfmt
        # rejects the catalogue ("duplicate message definition").
        for msgid in sorted(k for k in po.obsolete if k in po):
            short = msgid if len(msgid) < 70 else msgid[:67] + "..."
            found.append(f"{page}: obsolete copy of a live message: {short!r}")
        for message in read(pot):
            if not message.id:
                continue
            translated = po.get(message.id, message.context)
            short = message.id if len(message.id) < 70 else message.id[:67] + "..."
            if translated is None or not translated.string:
                found.append(f"{page}: untranslated: {short!r}")
            elif translated.fuzzy:
                found.append(f"{page}: fuzzy (English changed): {short!r}")
    return found


def update(pages: list[str]) -> None:
    """Merge the current English messages into the .po files (of ``pages`` only, if
    given: ``chapters/drop_path``), keeping the translations of unchanged messages."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = extract(Path(tmp))
        found = templates(folder)
        unknown = sorted(set(pages) - set(found))
        if unknown:
            raise SystemExit(
                f"no such page: {', '.join(unknown)}; pages: {', '.join(found)}"
            )
        for page, pot in found.items():
            if pages and page not in pages:
                pot.unlink()
        subprocess.run(
            [
                str(BIN / "sphinx-intl"),
                "update",
                "--pot-dir",
                str(folder),
                "--locale-dir",
                str(LOCALES),
                "--language",
                LOCALE,
                "--line-width",
                "-1",
            ],
            check=True,
        )
    strip_format_flags()


def strip_format_flags() -> None:
    """Drop babel's python-format and python-brace-format guesses: the messages are
    prose, and "the 1 % level" or a glue role is no format string (msgfmt
    --check-format would reject a correct translation)."""
    for path in CATALOGUES.rglob("*.po"):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = []
        for line in lines:
            if line.startswith("#,"):
                flags = [f.strip() for f in line[2:].split(",")]
                flags = [
                    f
                    for f in flags
                    if f not in ("python-format", "python-brace-format")
                ]
                if not flags:
                    continue
                line = "#, " + ", ".join(flags) + "\n"
            kept.append(line)
        text = "".join(kept)
        if text != "".join(lines):
            path.write_text(text, encoding="utf-8")


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        found = problems(extract(Path(tmp)))
    for line in found:
        print(line, file=sys.stderr)
    if found:
        print(
            f"{len(found)} problem(s) in the Chinese catalogues: run `python "
            "tools/i18n.py update`, translate the messages named in locales/zh_CN, "
            "clear their fuzzy flags, and delete obsolete (#~) copies of live ones.",
            file=sys.stderr,
        )
        return 1
    print("i18n: every message is translated")
    return 0


def stats() -> int:
    for po_path in sorted(CATALOGUES.rglob("*.po")):
        po = read(po_path)
        messages = [m for m in po if m.id]
        done = [m for m in messages if m.string and not m.fuzzy]
        print(
            f"{po_path.relative_to(CATALOGUES)}: {len(done)}/{len(messages)} translated"
        )
    return 0


def config() -> int:
    """_config.yml with the Chinese language, title, author, date format and
    catalogues, paths made absolute."""
    c = yaml.safe_load((ROOT / "_config.yml").read_text())
    c["title"] = ZH_TITLE
    c["author"] = ZH_AUTHOR
    c.setdefault("latex", {}).setdefault("latex_documents", {})["targetname"] = (
        f"{ZH_PDF}.tex"
    )
    sphinx = c.setdefault("sphinx", {})
    sphinx["local_extensions"] = {
        name: str(ROOT / path)
        for name, path in sphinx.get("local_extensions", {}).items()
    }
    sphinx.setdefault("config", {}).update(
        language=LOCALE,
        locale_dirs=[str(LOCALES)],
        gettext_compact=False,
        today_fmt=ZH_TODAY_FMT,
    )
    ZH_CONFIG.parent.mkdir(parents=True, exist_ok=True)
    ZH_CONFIG.write_text(yaml.safe_dump(c, sort_keys=False, allow_unicode=True))
    print(f"wrote {ZH_CONFIG}")
    return 0


if __name__ == "__main__":
    commands = {"check": check, "stats": stats, "config": config}
    if len(sys.argv) >= 2 and sys.argv[1] == "update":
        update(sys.argv[2:])
    elif len(sys.argv) == 2 and sys.argv[1] in commands:
        sys.exit(commands[sys.argv[1]]())
    else:
        sys.exit(__doc__)
