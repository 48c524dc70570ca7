"""The style sheet and the small script inlined into ``report.html`` (no CDN, no server).

The script only sorts and filters the tests table; with scripts off every row and chart
is still there (the filter controls stay hidden).
"""

from __future__ import annotations

__all__ = ["CSS", "SCRIPT"]

CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;
background:#f6f7f9}
main{max-width:1180px;margin:0 auto;padding:16px 20px 40px}
h1{font-size:21px;margin:0 0 6px} h2{font-size:18px;margin:30px 0 10px}
h3{font-size:15px;margin:18px 0 8px;overflow-wrap:anywhere}
code{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace;overflow-wrap:anywhere}
pre{background:#fff;border:1px solid #dde1e7;border-radius:6px;padding:10px;overflow-x:auto;
white-space:pre-wrap;font-size:12.5px;margin:6px 0}
nav{position:sticky;top:0;z-index:2;background:#1d2330;padding:6px 20px;
display:flex;flex-wrap:wrap;gap:4px 16px}
nav a{color:#d8e0ee;text-decoration:none;font-size:13px} nav a:hover{color:#fff}
.verdict{display:flex;gap:18px;align-items:center;padding:16px 20px;border-radius:8px;
margin-top:8px;color:#fff} .verdict p{margin:4px 0} .verdict code{color:#fff}
.verdict.passed{background:#1e7b3c} .verdict.failed{background:#b3261e}
.badge{font-size:26px;font-weight:800;letter-spacing:1px;border:3px solid #fff;
border-radius:8px;padding:6px 14px;white-space:nowrap}
.chip{display:inline-block;background:rgba(255,255,255,.18);border-radius:12px;
padding:1px 10px;margin:2px 6px 2px 0;font-size:13px}
.pass{color:#1e7b3c} .fail{color:#b3261e;font-weight:600} .unverified{color:#a15c00}
.failure{background:#fff;border:1px solid #e5b5b1;border-left:5px solid #b3261e;
border-radius:6px;padding:8px 14px;margin:10px 0}
.failure dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:6px 0}
.failure dt{color:#5b6475} .failure dd{margin:0}
.replay{background:#eef1f5;padding:1px 5px;border-radius:4px}
table{border-collapse:collapse;background:#fff;margin:6px 0;display:block;overflow-x:auto;
width:max-content;max-width:100%}
td,th{border:1px solid #dde1e7;padding:4px 9px;text-align:left;vertical-align:top}
th{background:#eef1f5;font-weight:600} table.compact td,table.compact th{padding:3px 8px}
th[data-sort]{cursor:pointer;user-select:none} #test-table td:first-child{min-width:15em}
th[aria-sort=ascending]::after{content:" ▲"}
th[aria-sort=descending]::after{content:" ▼"}
tr.regression td{background:#fde7e5} tr.zero td,td.zero{color:#9aa1ad}
.filters{margin:6px 0} .filters input{padding:4px 8px;min-width:260px;max-width:100%}
.operation{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:4px 16px 12px;
margin:14px 0}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(360px,1fr));gap:8px 18px}
figure{margin:10px 0} figcaption{font-size:13px;color:#5b6475;margin-bottom:2px;
overflow-wrap:anywhere}
svg.chart{width:100%;max-width:760px;height:auto;background:#fff;border:1px solid #e3e6eb;
border-radius:4px;display:block}
svg .grid{stroke:#edf0f3} svg .axis{stroke:#5b6475} svg .tick{font-size:11px;fill:#3b4352}
.budgets{margin:4px 0;padding-left:18px} .note{color:#5b6475;font-size:13px}
footer{color:#5b6475;font-size:13px}
@media (max-width:640px){main{padding:10px}.verdict{flex-direction:column;align-items:flex-start}
.charts{grid-template-columns:1fr} h1{font-size:18px}}
"""

SCRIPT = """
(function () {
  var table = document.getElementById("test-table");
  if (!table) return;
  var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
  var text = document.getElementById("test-filter");
  var outcome = document.getElementById("outcome-filter");
  var count = document.getElementById("test-count");
  document.querySelector(".filters").hidden = false;
  function key(row, i, kind) {
    var cell = row.cells[i], raw = cell.getAttribute("data-key");
    return kind === "num" ? parseFloat(raw === null ? cell.textContent : raw) || 0
                          : cell.textContent.toLowerCase();
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
    th.tabIndex = 0;
    function sort() {
      var kind = th.getAttribute("data-sort");
      var up = th.getAttribute("aria-sort") !== "ascending";
      Array.prototype.forEach.call(th.parentNode.cells, function (c) {
        c.removeAttribute("aria-sort");
      });
      th.setAttribute("aria-sort", up ? "ascending" : "descending");
      rows.sort(function (a, b) {
        var x = key(a, i, kind), y = key(b, i, kind);
        return (x < y ? -1 : x > y ? 1 : 0) * (up ? 1 : -1);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    }
    th.addEventListener("click", sort);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter") sort(); });
  });
  function filter() {
    var words = text.value.toLowerCase().split(/\\s+/).filter(Boolean), shown = 0;
    rows.forEach(function (r) {
      var hay = r.textContent.toLowerCase();
      var ok = (!outcome.value || r.getAttribute("data-outcome") === outcome.value) &&
        words.every(function (w) { return hay.indexOf(w) >= 0; });
      r.hidden = !ok;
      shown += ok ? 1 : 0;
    });
    count.textContent = shown + " of " + rows.length + " tests";
  }
  text.addEventListener("input", filter);
  outcome.addEventListener("change", filter);
  filter();
})();
"""
