"""HTML building blocks of the data-quality report: escaping, number cells, styles, scripts, CSP.

Study report sections (the ``report`` plug-in) build their HTML with these, so that every page keeps
one look, one escaping rule and one Content-Security-Policy.
"""

from __future__ import annotations

import base64
import hashlib
import html
from typing import Any

STATUS_SYMBOL = {"accepted": "✓", "accepted-with-warnings": "✓", "held": "!", "rejected": "✗"}


def e(value: Any) -> str:
    """Escape any value for HTML text or a quoted attribute (None shows as empty)."""
    return html.escape("" if value is None else str(value), quote=True)


CSS = """
:root { --ink: #1d232b; --muted: #56606b; --line: #d5dae0; --head: #f1f4f7; --accent: #1b3a66; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); margin: 0; background: #fafbfc; }
header { background: var(--accent); color: #fff; padding: 18px 32px 14px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 0; opacity: .92; }
main { max-width: 1200px; margin: 0 auto; padding: 8px 32px 40px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 14px 20px 12px;
          margin: 16px 0; }
h2 { font-size: 19px; margin: 2px 0 8px; color: var(--accent); }
p.lead { margin: 0 0 10px; color: var(--muted); }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px; margin: 6px 0 10px; }
.tile { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; background: var(--head); }
.tile .n { font-size: 24px; font-weight: 700; display: block; }
.tile .l { color: var(--muted); font-size: 13px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0 8px; font-size: 14px; }
caption { text-align: left; font-weight: 600; padding: 4px 0; color: var(--ink); }
th, td { border: 1px solid var(--line); padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: var(--head); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tfoot td { font-weight: 600; background: #f7f8fa; }
th button { all: inherit; cursor: pointer; border: 0; padding: 0; }
th button::after { content: " \\2195"; color: #99a; font-size: 11px; }
th[aria-sort="ascending"] button::after { content: " \\25B2"; color: var(--ink); }
th[aria-sort="descending"] button::after { content: " \\25BC"; color: var(--ink); }
.status { font-weight: 600; }
.status-accepted, .status-accepted-with-warnings { color: #1e6b2f; }
.status-held { color: #8a5a00; }
.status-rejected { color: #b3261e; }
.status-none { color: var(--muted); }
.sev-error { color: #b3261e; font-weight: 600; }
.sev-warning { color: #8a5a00; font-weight: 600; }
.zero { color: #9aa3ad; }
code, .cmd { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
p.cmd { background: #f3f5f8; border-left: 3px solid var(--accent); padding: 4px 10px; margin: 8px 0 2px; }
p.cmd::before { content: "Reproduce: "; font-family: system-ui, sans-serif; color: var(--muted); }
.note { background: #fff6e0; border: 1px solid #e8c76b; padding: 8px 12px; border-radius: 6px; }
svg.chart { max-width: 100%; height: auto; font-size: 13px; font-family: system-ui, sans-serif; fill: var(--ink); }
svg .small { font-size: 11px; }
details summary { cursor: pointer; color: var(--accent); }
footer { color: var(--muted); font-size: 13px; text-align: center; margin: 16px 0; }
td.msg { max-width: 480px; }
tbody th, .nowrap { white-space: nowrap; }
#site-status { font-size: 13px; }
#site-status th, #site-status td { padding: 4px 6px; }
.files { color: var(--muted); font-size: 12px; overflow-wrap: anywhere; }
td.upload { min-width: 150px; }
.scroll { overflow-x: auto; }
@media print { section { break-inside: avoid; } }
""".strip()

# Runs first: any script error becomes a visible marker in the DOM (a headless test reads it).
ERROR_HOOK = (
    "window.onerror=function(message){var root=document.documentElement;"
    "root.setAttribute('data-js-error',String(message));"
    "var note=document.createElement('p');note.id='js-error';note.textContent='Script error: '+message;"
    "(document.body||root).appendChild(note);};"
)

# Sortable tables: a button in each header cell sorts the body rows by that column (numbers by
# value, text alphabetically; a cell's data-sort overrides its text). Marks each table as ready.
SORT_SCRIPT = """
(function () {
  function key(cell) {
    var raw = cell.getAttribute('data-sort');
    if (raw === null) { raw = cell.textContent.trim(); }
    var number = Number(raw.replace(/[%,]/g, ''));
    return raw !== '' && !isNaN(number) ? [0, number] : [1, raw.toLowerCase()];
  }
  function compare(a, b) {
    if (a[0] !== b[0]) { return a[0] - b[0]; }
    return a[1] < b[1] ? -1 : (a[1] > b[1] ? 1 : 0);
  }
  function sortBy(table, index, th) {
    var ascending = th.getAttribute('aria-sort') !== 'ascending';
    Array.prototype.forEach.call(th.parentNode.cells, function (cell) { cell.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
    Array.prototype.forEach.call(table.tBodies, function (body) {
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (r1, r2) {
        var order = compare(key(r1.cells[index]), key(r2.cells[index]));
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  }
  var tables = document.querySelectorAll('table.sortable');
  Array.prototype.forEach.call(tables, function (table) {
    if (!table.tHead || !table.tHead.rows.length) { return; }
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      var button = document.createElement('button');
      button.type = 'button';
      while (th.firstChild) { button.appendChild(th.firstChild); }
      th.appendChild(button);
      button.addEventListener('click', function () { sortBy(table, index, th); });
    });
    table.setAttribute('data-sortable', 'ready');
  });
  document.documentElement.setAttribute('data-report-js', 'ready');
})();
""".strip()


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


CSP = (
    "default-src 'none'; img-src data:; "
    f"style-src {_csp_hash(CSS)}; script-src {_csp_hash(ERROR_HOOK)} {_csp_hash(SORT_SCRIPT)}; "
    "base-uri 'none'; form-action 'none'"
)


def num_cell(value: Any, command: str, *, zero_muted: bool = True) -> str:
    """A number cell with the command that reproduces it as its tooltip."""
    if value is None:
        return f'<td class="num" data-sort="-1" title="{e(command)}">–</td>'
    muted = ' zero' if zero_muted and value == 0 else ""
    return f'<td class="num{muted}" title="{e(command)}">{e(value)}</td>'


def cmd(*commands: str) -> str:
    """``<p class="cmd">`` lines naming the commands that reproduce a section."""
    return "".join(f'<p class="cmd"><code>{e(c)}</code></p>' for c in commands)


def status_badge(status: str | None) -> str:
    """A submission status with its symbol and colour class."""
    if not status:
        return '<span class="status status-none">— no submission</span>'
    return f'<span class="status status-{e(status)}">{e(STATUS_SYMBOL.get(status, ""))} {e(status)}</span>'


def site_label(study: Any, site: str) -> str:
    """``101 Oslo (NO)`` for a declared site, else the id."""
    info = study.sites.get(site)
    return f"{site} {info.city} ({info.country})" if info is not None else site


def when(timestamp: str | None) -> str:
    """A ledger UTC timestamp shown as ``YYYY-MM-DD HH:MM`` UTC."""
    if not timestamp:
        return ""
    return timestamp.replace("T", " ")[:16] + " UTC"
