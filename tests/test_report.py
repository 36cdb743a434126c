"""The HTML data-quality report: offline, escaped, blinded, per-site, with the expected numbers.

One small workspace (two sites, one subject each) is built once for the module: site 01 sends one
clean upload; site 07 sends a clean upload and then one held for its unacknowledged warnings (file name with ``&``) whose
serious AE, named ``<script>alert(1)</script>``, was reported late (PD-12) and whose dose is out of
range (PD-05). The ledger is pooled blinded into ``ws/pooled`` and unblinded into ``unblinded/``.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from trialkit.cli import COMMANDS, cli
from trialkit.ledger import open_workspace
from trialkit.report import build_report_html, write_report

from .test_deviations import clean_subject, day
from .upload_builder import write_upload

INJECTED = "<script>alert(1)</script>"
AMPERSAND_FILE = "site07 R&D.xlsx"
TODAY = dt.date(2030, 1, 15)  # ages every query by a known number of days


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def build_workspace(root: Path, study) -> Path:
    """The two-site workspace of the module docstring (also used by the browser test)."""
    ws = root / "ws"
    assert _invoke("init", str(ws)).exit_code == 0
    uploads = []
    for site, subject, rand in (("01", "01-001", "R001"), ("07", "07-001", "R002")):
        records = copy.deepcopy(clean_subject())
        records["RAND"][0]["RANDNO"] = rand
        uploads.append((site, subject, records, f"site{site}.xlsx", True))
    late = copy.deepcopy(clean_subject())
    late["RAND"][0]["RANDNO"] = "R002"
    late["EX"][0]["EXDOSE"] = 90  # PD-05: 30 kg allows 30-60 mg/day
    late["AE"][1]["AETERM"] = INJECTED
    late["AE"][1]["AERPTDAT"] = day(26)  # PD-12: aware on day 20, reported 6 days later
    uploads.append(("07", "07-001", late, AMPERSAND_FILE, False))
    for site, subject, records, name, accept in uploads:
        path = write_upload(study, root / name, records, site=site, subject=subject)
        args = ["submit", str(path), "--site", site, "--workspace", str(ws), "--data-cut", "2024-04-12", "-q"]
        result = _invoke(*args, *(["--accept-warnings"] if accept else []))
        assert result.exit_code == (0 if accept else 1), result.output
    assert _invoke("pool", "--workspace", str(ws), "-q").exit_code == 0
    return ws


@pytest.fixture(scope="module")
def built(tmp_path_factory, study):
    root = tmp_path_factory.mktemp("report")
    ws = build_workspace(root, study)
    randlist = root / "randlist.csv"
    randlist.write_text("RANDNO,ARM\nR001,ANAKINRA\nR002,PLACEBO\n")
    unblinded = root / "unblinded"
    assert _invoke("pool", "--workspace", str(ws), "-o", str(unblinded), "--unblind", str(randlist), "-q").exit_code == 0
    html_all = build_report_html(open_workspace(ws), study, today=TODAY)
    return {"root": root, "ws": ws, "unblinded": unblinded, "html": html_all}


# ------------------------------------------------------------------------------------------------
# A small HTML reader


class _Page(HTMLParser):
    """Collects every tag with its attributes, and the text of each table cell by table id."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._in_tbody = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "table":
            self._table = attributes.get("id") or f"table{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tbody":
            self._in_tbody = True
        elif tag == "tr" and self._table and self._in_tbody:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table and self._in_tbody:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tbody":
            self._in_tbody = False
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    return page


def rows_by_key(page: _Page, table: str) -> dict[str, list[str]]:
    return {row[0]: row for row in page.tables[table]}


# ------------------------------------------------------------------------------------------------
# Offline and safe


def test_report_loads_nothing_from_the_network(built):
    page = parse(built["html"])
    resource_attrs = ("src", "href", "xlink:href", "action", "poster", "data", "srcset", "formaction")
    for tag, attrs in page.tags:
        for name in resource_attrs:
            value = (attrs.get(name) or "").strip().lower()
            assert not value.startswith(("http:", "https:", "//", "ftp:")), (tag, name, value)
            if value:
                assert value.startswith(("#", "data:")), (tag, name, value)
        if tag == "script":
            assert "src" not in attrs
        if tag == "link":
            assert attrs.get("rel") == "icon" and attrs.get("href") == "data:,", attrs
    lowered = built["html"].lower()
    assert "<script src" not in lowered and "@import" not in lowered and "url(http" not in lowered
    assert "<link rel=stylesheet" not in lowered and '<link rel="stylesheet"' not in lowered
    # The browser is told to refuse any load anyway.
    csp = next(a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert csp.startswith("default-src 'none';") and "unsafe-inline" not in csp


def test_site_typed_text_is_escaped_never_markup(built):
    text = built["html"]
    assert INJECTED not in text
    assert "serious AE &lt;script&gt;alert(1)&lt;/script&gt; reported to the sponsor" in text
    assert len(re.findall(r"<script\b", text)) == 2  # the error hook and the sortable tables
    assert "site07 R&amp;D.xlsx" in text and AMPERSAND_FILE not in text
    page = parse(text)
    assert sum(1 for tag, _ in page.tags if tag == "script") == 2


def test_report_is_deterministic(built, study):
    again = build_report_html(open_workspace(built["ws"]), study, today=TODAY)
    assert again == built["html"]


# ------------------------------------------------------------------------------------------------
# Content


def test_site_status_table_has_the_ledger_numbers(built, study):
    page = parse(built["html"])
    sites = rows_by_key(page, "site-status")
    assert list(sites) == [f"{s} {v.city} ({v.country})" for s, v in study.sites.items()]
    opened = dt.date.fromisoformat(open_workspace(built["ws"]).queries(site="07")[0]["opened_at"][:10])
    age = str((TODAY - opened).days)
    #                      uploads  last status   current  cut           errors warnings total oldest
    milan = sites["01 Milan (IT)"]
    assert milan[1] == "1" and "accepted-with-warnings" in milan[3] and milan[4].startswith("#1 ·")
    assert milan[5:] == ["2024-04-12", "0", "0", "0", "–"]
    london = sites["07 London (GB)"]
    assert london[1] == "2" and london[2].startswith("#3 ·") and AMPERSAND_FILE in london[2]
    # Its deviations do not reject it, but its unacknowledged warnings hold it: #2 stays current.
    assert london[3] == "! held" and london[4].startswith("#2 ·")
    assert london[5:] == ["2024-04-12", "2", "0", "2", age]
    assert sites["03 Paris (FR)"][1:4] == ["0", "—", "— no submission"]
    assert '<span class="n">2 / 9</span><span class="l">sites with accepted data</span>' in built["html"]
    assert "title=\"trialkit queries --site 07 --status open\">2</td>" in built["html"]


def test_deviation_matrix_counts_open_deviations_by_site(built):
    page = parse(built["html"])
    matrix = rows_by_key(page, "deviation-matrix")
    assert len(matrix) == 14  # PD-01 ... PD-14, zero rows included
    #                         code, title, site 01 ... site 08, major, minor, total
    assert matrix["PD-05"][2:] == ["0", "0", "0", "0", "0", "0", "1", "0", "0", "1", "0", "1"]
    assert matrix["PD-12"][2:] == ["0", "0", "0", "0", "0", "0", "1", "0", "0", "1", "0", "1"]
    assert matrix["PD-01"][-3:] == ["0", "0", "0"]


def test_the_deviation_log_by_status(built):
    page = parse(built["html"])
    by_code = rows_by_key(page, "deviation-status-by-code")
    #                    code    open confirmed resolved dismissed total
    assert by_code["PD-12"] == ["PD-12", "1", "0", "0", "0", "1"]
    assert by_code["PD-05"] == ["PD-05", "1", "0", "0", "0", "1"]
    by_site = rows_by_key(page, "deviation-status-by-site")
    assert by_site["Site 07"][1] == str(sum(1 for e in open_workspace(built["ws"]).deviation_log(site="07")
                                            if e["status"] == "open"))
    assert by_site["Site 03"][1:] == ["0", "0", "0", "0", "0"]


def test_charts_and_primary_endpoint_numbers(built):
    text = built["html"]
    assert text.count("<svg") == 5  # deviations, enrollment, W4 completeness, heat map, response
    page = parse(text)
    assert rows_by_key(page, "primary-completeness") == {
        #            randomized due assessable imputed not-due share
        "Site 01": ["Site 01", "1", "1", "1", "0", "0", "100%"],
        "Site 07": ["Site 07", "1", "1", "1", "0", "0", "100%"],
    }
    assert rows_by_key(page, "response-by-age")["All"] == ["All", "2", "0", "0", "0%"]
    assert rows_by_key(page, "enrollment") == {"2024-03": ["2024-03", "2", "2"]}
    # Heat map: W4 closed (day 32 = 2024-04-04) before the cut 2024-04-12; W8 did not.
    assert "VS W4: 2 of 2 expected records present" in text
    assert "CORE W8: not yet due for any subject" in text
    assert "<strong>72</strong> of 72 expected diary days recorded" in text  # days -7..29, no day 0; 2 subjects


def test_every_section_names_a_command(built):
    text = built["html"]
    for command in ("trialkit log", "trialkit pool", "trialkit queries --site 01 --status open",
                    "trialkit log --site 01", "trialkit deviations --status open --status confirmed -f csv",
                    "trialkit deviations -f xlsx -o deviation_log.xlsx"):
        assert f"<code>{command}" in text, command
    page = parse(text)
    for table in ("site-status", "deviation-matrix", "primary-completeness", "response-by-age"):
        cells = [a for t, a in page.tags if t == "td" and "num" in (a.get("class") or "")]
        assert cells and all(a.get("title", "").startswith("trialkit") or "—" in a.get("title", "")
                             for a in cells if a.get("title")), table


def test_accessible_basics(built):
    page = parse(built["html"])
    tags = [t for t, _ in page.tags]
    assert tags.count("title") >= 1 and "h1" in tags and tags.count("h2") >= 7
    assert tags.count("caption") == tags.count("table")
    assert all(a.get("role") == "img" and a.get("aria-label") for t, a in page.tags if t == "svg")
    assert '<html lang="en">' in built["html"]


# ------------------------------------------------------------------------------------------------
# Blinding and per-site reports


def test_unblinded_pool_never_shows_the_arm(built, study):
    adsl = pd.read_parquet(built["unblinded"] / "adsl.parquet")
    assert set(adsl["ARM"]) == {"ANAKINRA", "PLACEBO"}  # the precondition: this pool is unblinded
    text = build_report_html(open_workspace(built["ws"]), study, pooled_dir=built["unblinded"], today=TODAY)
    assert "PLACEBO" not in text and "ANAKINRA" not in text
    assert not re.search(r"\bARM\b", text)
    assert "stays blinded" in text
    assert rows_by_key(parse(text), "response-by-age")["All"][1] == "2"


@pytest.mark.parametrize(("site", "other_site", "other_subject", "other_city"),
                         [("01", "07", "07-001", "London"), ("07", "01", "01-001", "Milan")])
def test_site_report_holds_only_that_site(built, study, site, other_site, other_subject, other_city):
    text = build_report_html(open_workspace(built["ws"]), study, site=site, today=TODAY)
    for foreign in (other_subject, other_city, f"Site {other_site}", f"site {other_site}",
                    f"--site {other_site}", f">{other_site}<", f"{other_site} {other_city}"):
        assert foreign not in text, foreign
    for other in study.sites.values():
        if other.id != site:
            assert other.city not in text, other.city
    page = parse(text)
    assert list(rows_by_key(page, "site-status")) == [f"{site} {study.sites[site].city} ({study.sites[site].country})"]
    assert '<span class="n">1</span><span class="l">subjects randomized</span>' in text
    assert list(rows_by_key(page, "primary-completeness")) == [f"Site {site}"]
    if site == "07":
        assert len(page.tables["open-queries"]) == 2 and "07-001" in text
    else:
        assert "open-queries" not in page.tables and "No open query." in text


def test_report_without_pooled_datasets_re_imports_current_data(built, study, tmp_path):
    text = build_report_html(open_workspace(built["ws"]), study, pooled_dir=tmp_path / "none", today=TODAY)
    assert "current accepted submissions (no pooled datasets found" in text
    assert '<span class="n">2</span><span class="l">subjects randomized</span>' in text


def test_stale_pool_is_flagged(built, study, tmp_path):
    stale = tmp_path / "stale"
    stale.mkdir()
    for item in built["unblinded"].iterdir():
        (stale / item.name).write_bytes(item.read_bytes())
    manifest = json.loads((stale / "manifest.json").read_text())
    for entry in manifest["forms"]["07"].values():  # site 07 pooled from an older submission than its current
        entry["submission"] = 3
    (stale / "manifest.json").write_text(json.dumps(manifest))
    text = build_report_html(open_workspace(built["ws"]), study, pooled_dir=stale, today=TODAY)
    assert "The pooled datasets are older than the ledger" in text


# ------------------------------------------------------------------------------------------------
# Command line


def test_cli_writes_the_report_and_prints_its_path(built, tmp_path):
    out = tmp_path / "out" / "report.html"
    result = _invoke("report", "--workspace", str(built["ws"]), "-o", str(out), "-q")
    assert result.exit_code == 0, result.output
    assert result.output == f"{out}\n"
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    site = tmp_path / "site7.html"
    result = _invoke("report", "--workspace", str(built["ws"]), "-o", str(site), "--site", "7", "-q")
    assert result.exit_code == 0 and result.output == f"{site}\n"
    assert "01-001" not in site.read_text(encoding="utf-8")


def test_cli_unknown_site_is_a_usage_error(built, tmp_path):
    result = CliRunner().invoke(cli, ["report", "--workspace", str(built["ws"]), "-o", str(tmp_path / "x.html"),
                                      "--site", "42"])
    assert result.exit_code == 2
    assert "unknown site" in result.output


def test_cli_help_matches_the_registered_description():
    from trialkit.commands.report import command

    assert command.help.splitlines()[0] == COMMANDS["report"][1]


def test_write_report_returns_the_path(built, study, tmp_path):
    target = write_report(built["ws"], study, tmp_path / "r.html", today=TODAY)
    assert target == tmp_path / "r.html" and target.read_text(encoding="utf-8") == built["html"]
