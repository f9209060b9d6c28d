"""Nothing from a note changes what a terminal, a spreadsheet or a rendered PR comment shows
beyond the text itself: clean, md_text and csv_cell over a hostile corpus, then the real CLI
over a repository whose receipts and commits carry hostile strings."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import unicodedata
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from aispend.cli.report import render
from aispend.receipts.model import canonical
from aispend.reports.html import render_html
from aispend.reports.render import clean, csv_cell, md_text, trust_warnings
from tests.gitutil import Repo, Spend

NOT_TEXT = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
ZWSP = "\u200b"

#: Terminal and text tricks: ANSI, OSC 8 hyperlinks, C1, bidi, invisible, separators, surrogates...
TERMINAL = [
    "\x1b[31mred\x1b[0m",
    "\x1b]8;;http://evil.example\x07click\x1b]8;;\x07",
    "\x9b31mC1 CSI\x9d0;title\x9c",
    "abc\u202edcba\u202c",
    "\u2066isolate\u2069 \u200e\u200f\u061c",
    "zero\u200bwidth\u200c\u200d\u2060\ufeff",
    "line\u2028sep\u2029par",
    "lone \ud800 surrogate",
    "private \ue000 use, tag \U000e0041, unassigned \u0378",
    "new\nline\r\nand\ttab\x00nul\x7fdel\x85nel",
]
#: Markdown and forge tricks: links, images, autolinks, HTML, entities, mentions, references...
MARKDOWN = [
    "[x](https://evil.example)",
    "![i](https://evil.example/i.png)",
    "<https://evil.example>",
    "https://evil.example/path and http://x",
    "www.evil.com and WWW.EVIL.COM",
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "<!-- hidden --> <b>bold</b>",
    "javascript:alert(1)",
    "&amp; &#64;octocat &lt;b&gt; &ZeroWidthSpace;",
    "@octocat and @org/team",
    "mail me: dev@evil.example",
    "#123 owner/repo#9 GH-1 gh-42",
    "!12 ~bug ~\"two words\" %v1 $9 &3",
    ":+1: :smile:",
    "a | b | c",
    "\\| escaped pipe \\\\| and a trailing backslash \\",
    "*em* _em_ **strong** __strong__ ~~strike~~ ~one~ `code` ``two``",
    "[ref]: https://evil.example",
    "[^1] footnote",
    "$x^2$ and $$y$$",
    "# heading",
    "- list",
    "1. list",
    "> quote",
    "---",
    "===",
    "```fence",
    "    indented code",
]
CORPUS = TERMINAL + MARKDOWN + ["plain text", "café ☕ 🙂 日本語 e\u0301 a\u00a0b", ""]

#: What forges link after rendering, on the text (a backslash does not stop them).
FORGE_PATTERNS = [
    re.compile(r"(?<![\w])@[A-Za-z0-9]"),  # @user, @org/team
    re.compile(r"[\w.+-]@[A-Za-z0-9]"),  # e-mail autolink
    re.compile(r"#\d"),  # #123, owner/repo#9
    re.compile(r"\bGH-\d", re.I),
    re.compile(r"(?<![\w])[!~%$&][\w\"]"),  # GitLab: !MR ~label %milestone $snippet &epic
    re.compile(r":[\w+-]+:"),  # :emoji:
    re.compile(r"[A-Za-z][\w+.-]*:/"),  # scheme://
    re.compile(r"www\.[\w-]", re.I),  # www.example.com
]
MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])  # commonmark: raw HTML on, as on forges


def _inline_tokens(src: str) -> list[Any]:
    return [c for t in MD.parse(src) if t.type == "inline" for c in (t.children or [])]


def _text(tokens: list[Any]) -> str:
    return "".join("\n" if t.type in ("hardbreak", "softbreak") else t.content for t in tokens)


# -- clean ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", CORPUS)
def test_clean_leaves_only_plain_text(value: str) -> None:
    out = clean(value)
    assert len(out) == len(value)  # one "?" per character taken out: nothing else moves
    assert not any(unicodedata.category(ch) in NOT_TEXT for ch in out)
    assert all(o == v or o == "?" for o, v in zip(out, value))


def test_clean_exact() -> None:
    assert clean("\x1b[31mred\x1b[0m") == "?[31mred?[0m"
    assert clean("\x1b]8;;http://x\x07link\x1b]8;;\x07") == "?]8;;http://x?link?]8;;?"
    assert clean("a\x9bb") == "a?b"
    assert clean("abc\u202edcba") == "abc?dcba"
    assert clean("zero\u200bwidth\ufeff") == "zero?width?"
    assert clean("a\u2028b\u2029c") == "a?b?c"
    assert clean("a\tb\nc") == "a?b?c"
    keep = "café ☕ 🙂 日本語 e\u0301 a\u00a0b\u3000c"  # letters, marks, emoji, no-break and ideographic spaces
    assert clean(keep) == keep


# -- Markdown -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", CORPUS)
def test_md_text_renders_as_its_text_and_nothing_else(value: str) -> None:
    out = md_text(value)
    assert out.isascii() or not any(unicodedata.category(ch) in NOT_TEXT for ch in out)
    for src, cells in ((f"x {out} y\n", None), (f"| a | b |\n|---|---|\n| {out} | z |\n", 2)):
        tokens = _inline_tokens(src)
        assert {t.type for t in tokens} <= {"text"}, (value, [t.type for t in tokens])
        rendered = MD.render(src)
        assert not re.search(r"<(?!/?(p|table|thead|tbody|tr|th|td)>)", rendered), rendered
        if cells:
            assert rendered.count("<td>") == cells
            texts = [_text(t.children or []) for t in MD.parse(src) if t.type == "inline"]
            assert texts[2].strip().replace(ZWSP, "") == clean(value).strip() and texts[3] == "z"
        else:
            text = _text(tokens)
            assert text.replace(ZWSP, "") == f"x {clean(value)} y".strip()
            assert not any(p.search(text) for p in FORGE_PATTERNS), (value, text)


def test_md_text_exact() -> None:
    assert md_text("[x](https://e.x)") == "\\[x\\]\\(https\\:&#8203;\\/\\/e\\.x\\)"
    assert md_text("@octocat") == "\\@&#8203;octocat"
    assert md_text("#12 GH-3") == "\\#&#8203;12 GH\\-&#8203;3"
    assert md_text("claude-sonnet-4-5") == "claude\\-sonnet\\-4\\-5"
    assert md_text("a | b") == "a \\| b"
    assert md_text("\x1b[1m") == "\\?\\[1m"


def _rep(**extra: Any) -> dict[str, Any]:
    """A spend report (the JSON contract) whose every string from a note or a commit is hostile."""
    totals = {
        "commits": 3, "commits_with_receipts": 2, "failed_receipts": 0, "requests": 3, "input_tokens": 3000,
        "output_tokens": 1500, "cache_creation_tokens": 0, "cache_read_tokens": 0, "reasoning_tokens": 0,
        "total_tokens": 4500, "unpriced_tokens": 0, "cost_usd": 0.021, "cache_hit_rate": 0.0,
        "cost_per_commit": {"mean": 0.0105, "median": 0.0105, "p90": 0.0105},
        "models": [{"model": m, "cost_usd": 0.001, "share": 0.1} for m in CORPUS],
    }
    totals.update(extra.pop("totals", {}))
    rep: dict[str, Any] = {
        "range": "HEAD", "since": "2026-02-01", "until": "2026-02-28", "tz": "UTC", "group_by": "model",
        "totals": totals,
        "rows": [{"key": k, "commits": 1, "requests": 1, "input_tokens": 1, "output_tokens": 1, "cache_creation_tokens": 0,
                  "cache_read_tokens": 0, "reasoning_tokens": 0, "total_tokens": 2, "unpriced_tokens": 0,
                  "cost_usd": 0.5, "cache_hit_rate": 0.0} for k in CORPUS],
        "outliers": [{"commit": "`](x)<b>", "author": a, "subject": s, "cost_usd": 1.0, "times_median": 9.0}
                     for a, s in zip(CORPUS, reversed(CORPUS))],
        "anomalies": [],
        "daily": [{"day": "2026-02-03", "cost_usd": 0.01, "commits": 1}],
        "top_commits": [{"commit": "0123456789abcdef", "author": a, "subject": s, "day": "2026-02-03", "cost_usd": 0.01}
                        for a, s in zip(CORPUS, CORPUS)] + [{"commit": "`](x) <b>", "author": "x", "subject": "y",
                                                             "day": "2026-02-03", "cost_usd": 0.01}],
        "trend": None,
        "alerts": [{"message": m} for m in MARKDOWN],
    }
    rep.update(extra)
    return rep


def _md_tables(rendered: str) -> list[list[int]]:
    """Cells per row, table by table, of rendered Markdown."""
    return [[row.count("<td") + row.count("<th") for row in re.findall(r"<tr>(.*?)</tr>", t, re.S)]
            for t in re.findall(r"<table>(.*?)</table>", rendered, re.S)]


def _assert_only_our_markup(rendered: str) -> None:
    tags = set(re.findall(r"</?([a-zA-Z][\w-]*)", rendered))
    assert tags <= {"p", "strong", "table", "thead", "tbody", "tr", "th", "td", "code", "blockquote", "br"}, tags
    assert not re.search(r"<(a|img|script|b|em|del|s)[\s>]", rendered)
    assert not re.search(r"\s(href|src|on\w+)=", html.unescape(re.sub(r">[^<]*<", "><", rendered)))


def test_markdown_report_of_hostile_values() -> None:
    rep = _rep()
    md = render(rep, "md")
    assert md.startswith("**AI spend: $0.02** over 2 of 3 commits")  # nothing to warn about
    assert not any(unicodedata.category(ch) in NOT_TEXT for ch in md.replace("\n", ""))
    rendered = MD.render(md)
    _assert_only_our_markup(rendered)
    assert _md_tables(rendered) == [[4] * (1 + len(CORPUS)), [3] * (2 + len(CORPUS)), [3] * (1 + len(CORPUS))]
    cells = [t for t in MD.parse(md) if t.type == "inline"]
    texts = [_text(t.children or []).replace(ZWSP, "") for t in cells]
    for value in CORPUS:
        assert clean(value).strip() in texts  # a row key, and a model, shown as exactly its text
    assert "<code>0123456789ab</code>" in rendered  # a hex commit id in a code span
    assert "`](x)" not in md and "\\`\\]\\(x\\)" in md  # not hex: escaped text, no code span
    assert "<p>⚠️ [x](https://evil.example)</p>" in rendered.replace(ZWSP, "")  # an alert message, as text


def test_markdown_leads_with_verification_warnings() -> None:
    rep = _rep(
        trust={"allowed_signers": None, "signers_checked": False, "signers": 0, "problems": []},
        signers_checked=False,
        totals={"failed_receipts": 3, "not_counted": {"receipts": 3, "cost_usd": 12.0, "by_status": {"invalid": 1, "unknown-signer": 2}}},
    )
    md = render(rep, "md")
    assert md.startswith("> ⚠️ Signers not checked")
    first = MD.parse(md)
    assert first[0].type == "blockquote_open"
    quote = _text(first[2].children or []).replace(ZWSP, "")
    assert quote.split("\n") == [
        "⚠️ Signers not checked: no allowed-signers list",
        "⚠️ 3 receipts ($12.00 claimed) not counted: 2 unknown-signer, 1 invalid (aispend verify)",
    ]
    assert "failed verification" not in md  # the not-counted line already accounts for them


def test_warnings_from_every_shape_of_report() -> None:
    assert trust_warnings(_rep()) == []
    assert trust_warnings(_rep(totals={"failed_receipts": 1})) == ["1 receipt failed verification (aispend verify)"]
    assert render(_rep(totals={"failed_receipts": 2}), "md").startswith("> ⚠️ 2 receipts failed verification \\(aispend verify\\)\n")
    several = _rep(trust={"repositories": [
        {"allowed_signers": "/x", "signers_checked": True, "signers": 1, "problems": []},
        {"allowed_signers": "/y", "signers_checked": False, "signers": 0, "problems": ["line 3: <b>not a key</b>"]},
    ]}, signers_checked=False, totals={"not_counted": {"receipts": 1, "claimed_cost_usd": 0.5, "by_status": {"unverified-signer": 1}}})
    assert trust_warnings(several) == [
        "Signers not checked: line 3: <b>not a key</b>",
        "1 receipt ($0.50 claimed) not counted: 1 unverified-signer (aispend verify)",
    ]
    _assert_only_our_markup(MD.render(render(several, "md")))
    assert "&lt;b&gt;not a key&lt;/b&gt;" in render_html(several)


# -- CSV ------------------------------------------------------------------------------------

FORMULA = set("=+-@\t\r＝＋－＠﹦﹢﹣﹫")


def _spreadsheet_safe(cell: str) -> bool:
    """A cell no spreadsheet runs: not starting (after spaces) with a formula character,
    unless quoted as text."""
    return cell.startswith("'") or cell.lstrip()[:1] not in FORMULA


@pytest.mark.parametrize("value, expected", [
    ('=HYPERLINK("http://evil.example","x")', '\'=HYPERLINK("http://evil.example","x")'),
    ("+1", "'+1"),
    ("-1", "'-1"),
    ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
    ("  =1+1", "'  =1+1"),
    ("\u3000=1+1", "'\u3000=1+1"),
    ("＝1+1", "'＝1+1"),
    ("＠SUM(1)", "'＠SUM(1)"),
    ("\t=1+1", "?=1+1"),  # a tab is not text: cleaned, and "?" starts no formula
    ("\r=1+1", "?=1+1"),
    ("\x1b[31m=1", "?[31m=1"),
    ("a=b", "a=b"),
    ("dev@example.com", "dev@example.com"),
    ("claude-sonnet-4-5", "claude-sonnet-4-5"),
    ("", ""),
    (3, 3),
    (0.0105, 0.0105),
    (True, "true"),
    (False, "false"),
    (None, ""),
])
def test_csv_cell(value: object, expected: object) -> None:
    assert csv_cell(value) == expected
    assert type(csv_cell(value)) is type(expected)


@pytest.mark.parametrize("value", CORPUS + ["=1", "+1", "-1", "@x", " -2", "\t=1", "\r=1", "＝1", "﹢1"])
def test_csv_cells_are_never_formulas(value: str) -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([csv_cell(value), "next"])
    (row,) = list(csv.reader(io.StringIO(buf.getvalue())))
    assert len(row) == 2 and row[1] == "next"  # no cell or row broken out of
    assert _spreadsheet_safe(row[0])
    assert row[0].removeprefix("'") == clean(value)


# -- HTML and JSON (functions) ------------------------------------------------------------------


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs.update(a for a, _ in attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


OUR_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "div", "b", "p", "table", "tr", "th", "td",
            "code", "svg", "text", "rect", "line", "polyline", "circle"}
OUR_ATTRS = {"lang", "charset", "class", "style", "xmlns", "width", "height", "role", "x", "y", "rx", "fill", "font-size",
             "text-anchor", "x1", "y1", "x2", "y2", "stroke", "stroke-width", "points", "cx", "cy", "r"}


def _assert_safe_html(page: str) -> _Tags:
    p = _Tags()
    p.feed(page)
    assert p.tags <= OUR_TAGS, p.tags - OUR_TAGS
    assert p.attrs <= OUR_ATTRS, p.attrs - OUR_ATTRS  # no href, src, on*
    assert not any(unicodedata.category(ch) in NOT_TEXT - {"Cc"} for ch in page)
    assert not any(unicodedata.category(ch) == "Cc" and ch != "\n" for ch in page)
    return p


def test_html_report_of_hostile_values() -> None:
    page = render_html(_rep(totals={"failed_receipts": 1}))
    p = _assert_safe_html(page)
    text = "".join(p.text)
    for value in CORPUS:
        assert clean(value) in text  # shown as exactly its (cleaned) text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "javascript:alert(1)" in text
    assert "1 receipt failed verification (aispend verify)" in text


def test_json_is_exact_and_ascii() -> None:
    rep = _rep()
    out = render(rep, "json")
    assert out.isascii()
    assert json.loads(out) == json.loads(json.dumps(rep))


# -- The real CLI, over real receipts ---------------------------------------------------------

MODELS = [
    "<img src=x onerror=alert(1)>",
    '=HYPERLINK("http://evil.example","x")',
    "[x](javascript:alert(1))",
    "![i](https://evil.example/i.png) www.evil.com",
    "@octocat @org/team #123 GH-1 | a | b",
    "*em* _u_ ~~s~~ `c` &amp; &#64; +1",
]
SESSION = "<b>s</b>@octocat#1|x"
SUBJECT = "fix [x](https://evil.example) <script>x</script> @octocat #123 | GH-9 \x1b[31m\u202eevil\x9b"
AUTHOR = "@org/team|x"


@pytest.fixture
def hostile(repo: Repo, spend: Spend, tmp_path: Path) -> tuple[Repo, Path]:
    """A repository whose one receipted commit has hostile model names, session id, subject and
    author; and the allowed-signers file that trusts this machine's key."""
    for i, model in enumerate(MODELS):
        spend.claude(repo.path, f"2026-03-01T09:1{i}:00Z", SESSION, model=model)
    repo.commit(SUBJECT, "2026-03-01T09:20:00Z", files={"a.txt": "a\n"}, env={"GIT_AUTHOR_EMAIL": AUTHOR})
    signers = tmp_path / "allowed_signers"
    signers.write_text(repo.aispend("key").stdout.splitlines()[-1] + "\n")
    return repo, signers


def _report(repo: Repo, signers: Path, *args: str) -> str:
    return repo.aispend("report", "--since", "2026-03-01", "--tz", "UTC", "--allowed-signers", str(signers), *args).stdout


def test_markdown_through_the_cli(hostile: tuple[Repo, Path]) -> None:
    repo, signers = hostile
    data = json.loads(_report(repo, signers, "--format", "json", "--by", "model"))
    assert {r["key"] for r in data["rows"]} == set(MODELS)  # the receipts count: the strings reach the report
    expected = {"model": MODELS, "session": [f"claude:{SESSION}"], "author": [AUTHOR]}
    for by, keys in expected.items():
        md = _report(repo, signers, "--format", "md", "--by", by)
        assert md.startswith("**AI spend:")  # trusted signers, every receipt counted: nothing to warn about
        assert not any(unicodedata.category(ch) in NOT_TEXT for ch in md.replace("\n", ""))
        for raw in ("<img", "<script", "<b>", "](", "@octocat", "#123", "| a |", "\x1b", "\u202e"):
            assert not re.search(r"(?<!\\)" + re.escape(raw), md), raw  # only ever escaped
        rendered = MD.render(md)
        _assert_only_our_markup(rendered)
        tables = _md_tables(rendered)
        assert tables == [[4] * (1 + len(keys)), [3, 3], [3] * (1 + len(MODELS))]
        texts = {_text(t.children or []).replace(ZWSP, "") for t in MD.parse(md) if t.type == "inline"}
        assert set(keys) <= texts and set(MODELS) <= texts
        assert clean(SUBJECT)[:72] in texts  # the subject, cut at 72 characters
        # What a forge would link in the rendered text, our own amounts ($0.02) aside.
        shown = re.sub(r"\$[\d,.]+", "", "\n".join(_text(t.children or []) for t in MD.parse(md) if t.type == "inline"))
        assert not [p.pattern for p in FORGE_PATTERNS if p.search(shown)], shown


def test_markdown_leads_with_a_failing_receipt(hostile: tuple[Repo, Path]) -> None:
    repo, signers = hostile
    rec = json.loads(repo.git("notes", "--ref=refs/notes/aispend", "show", "HEAD").strip())
    rec["totals"]["cost_usd"] = "9"
    repo.git("notes", "--ref=refs/notes/aispend", "add", "-f", "-m", canonical(rec), "HEAD")
    md = _report(repo, signers, "--format", "md")
    assert md.startswith("> ⚠️ ")
    head = md.split("\n\n")[0]
    assert "aispend verify" in head and ("not counted" in head or "failed verification" in head)
    _assert_only_our_markup(MD.render(md))


def test_csv_through_the_cli(hostile: tuple[Repo, Path]) -> None:
    repo, signers = hostile
    outputs = {
        "report": _report(repo, signers, "--format", "csv", "--by", "model"),
        "export": repo.aispend("export", "--format", "csv", "--allowed-signers", str(signers)).stdout,
        "usage": repo.aispend("usage", "--csv", "--by", "model", "--since", "2026-03-01", "--tz", "UTC").stdout,
    }
    for name, text in outputs.items():
        assert "\x1b" not in text and "\u202e" not in text, name
        rows = list(csv.reader(io.StringIO(text)))
        assert len({len(r) for r in rows}) == 1, name  # every row as wide as the header
        assert all(_spreadsheet_safe(cell) for r in rows for cell in r), name
        keys = {r[rows[0].index("model" if name == "export" else "key")] for r in rows[1:]}
        assert keys == {("'" + m if m[0] in FORMULA else m) for m in MODELS}, name
    export = list(csv.DictReader(io.StringIO(outputs["export"])))
    assert {r["carried"] for r in export} == {"false"}  # not Python's False
    assert {r["author"] for r in export} == {"'" + AUTHOR} and {r["session"] for r in export} == {SESSION}


def test_json_through_the_cli(hostile: tuple[Repo, Path]) -> None:
    repo, signers = hostile
    out = _report(repo, signers, "--format", "json", "--by", "model")
    assert out.isascii()  # no raw escape, C1 or bidi character for a terminal
    data = json.loads(out)
    assert data["top_commits"][0]["subject"] == SUBJECT  # exact once decoded
    lines = repo.aispend("export", "--allowed-signers", str(signers)).stdout
    assert lines.isascii()
    assert {json.loads(x)["model"] for x in lines.splitlines()} == set(MODELS)


def test_html_through_the_cli(hostile: tuple[Repo, Path], tmp_path: Path) -> None:
    repo, signers = hostile
    out = tmp_path / "report.html"
    _report(repo, signers, "--format", "html", "--output", str(out))
    page = out.read_text()
    p = _assert_safe_html(page)
    text = "".join(p.text)
    assert all(m in text for m in MODELS) and clean(SUBJECT)[:80] in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
