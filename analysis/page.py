"""
page - the HTML page: one self-contained file (CSS inline, plots inline as
SVG, no script, nothing fetched) that opens from a disk or as a mail
attachment and reads on a 1280-pixel screen and on a phone. The building
blocks are small functions that return markup: a table whose numbers are
right-aligned and which scrolls inside its own box when it is wider than
the screen, a figure with its caption, the headline box, the warning
banners, a provenance table, and the page around them. Text is escaped
here; a Markup string is markup already and is passed through.

The reports of a run, a comparison and a bench (report.py, compare.py,
bench.py) assemble their pages from these; the kinds write their sections
with them.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from analysis.kind import Fact
from analysis.plots import Drawn

PAGE_FILE = "report.html"


class Markup(str):
    """Text that is markup already: not escaped again."""


def esc(text) -> str:
    """Text (or Markup, as it is) for the page."""
    return text if isinstance(text, Markup) else html.escape(str(text), quote=True)


def tag(name: str, body, cls: str = "", **attrs) -> Markup:
    """<name class=cls attrs>body</name>; body escaped unless Markup."""
    extra = "".join(f' {k.rstrip("_").replace("_", "-")}="{esc(v)}"' for k, v in attrs.items()
                    if v is not None)
    return Markup(f"<{name}{f' class={chr(34)}{cls}{chr(34)}' if cls else ''}{extra}>"
                  f"{esc(body)}</{name}>")


def join(*parts) -> Markup:
    """Markup of the parts in order, each escaped unless Markup; empty ones left out."""
    return Markup("\n".join(esc(p) for p in parts if p))


def para(text, cls: str = "") -> Markup:
    return tag("p", text, cls)


def items(lines, cls: str = "") -> Markup:
    """A bulleted list."""
    return tag("ul", Markup("".join(tag("li", line) for line in lines)), cls)


class Row(list):
    """A table row whose cells are the list; cls marks it (bad, partial)."""

    def __init__(self, cells, cls: str = ""):
        super().__init__(cells)
        self.cls = cls


def table(head: list[str], rows: list, align: str = "", caption: str = "",
          cls: str = "") -> Markup:
    """A table in a box that scrolls sideways when the table is wider than
    the page. head: the column names, each with its unit; align: 'l' or 'r'
    per column (default: the first left, the others right, as numbers go);
    rows: lists of cells (a Row to mark one)."""
    n = len(head)
    align = (align or "l" + "r" * (n - 1)).ljust(n, "r")
    cols = ["num" if a == "r" else "" for a in align]
    out = ["<div class=\"scroll\"><table" + (f' class="{cls}"' if cls else "") + ">"]
    if caption:
        out.append(f"<caption>{esc(caption)}</caption>")
    out.append("<thead><tr>" + "".join(tag("th", h, c, scope="col") for h, c in zip(head, cols))
               + "</tr></thead><tbody>")
    for row in rows:
        mark = getattr(row, "cls", "")
        out.append((f'<tr class="{mark}">' if mark else "<tr>")
                   + "".join(tag("td", cell, c) for cell, c in zip(row, cols)) + "</tr>")
    out.append("</tbody></table></div>")
    return Markup("".join(out))


def pairs(rows: list[tuple[str, str]], cls: str = "pairs") -> Markup:
    """A two-column table of names and values (provenance, settings)."""
    body = "".join(f"<tr>{tag('th', k, scope='row')}{tag('td', v)}</tr>" for k, v in rows)
    return Markup(f'<div class="scroll"><table class="{cls}"><tbody>{body}</tbody></table></div>')


def figures(drawn: list[Drawn], skipped: str = "") -> Markup:
    """Each figure inline with its caption (and its PNG file named); or, when
    none was drawn, the sentence skipped saying why."""
    if not drawn:
        return para(skipped, "note") if skipped else Markup("")
    out = []
    for d in drawn:
        # The PNG beside the page, at its full size (a phone's reader zooms
        # into the inline SVG, or opens this).
        png = f' (<a href="{esc(d.file)}">{esc(d.file)}</a>)' if d.path is not None else ""
        out.append(f'<figure id="fig-{esc(Path(d.file).stem)}"><div class="plot" '
                   f'style="--inches: {d.inches:.1f}">{d.markup}</div>'
                   f"<figcaption>{esc(d.caption)}{png}</figcaption></figure>")
    return Markup("\n".join(out))


def facts(found: list[Fact]) -> Markup:
    """The headline box: the figures that answer 'how fast'."""
    if not found:
        return Markup("")
    cells = []
    for f in found:
        exact = f' data-value="{esc(f.exact)}"' if f.exact is not None else ""
        key = f' data-key="{esc(f.key)}"' if f.key else ""
        note = f'<span class="fact-note">{esc(f.note)}</span>' if f.note else ""
        unit = f"<small> {esc(f.unit)}</small>" if f.unit else ""
        cells.append(f'<div class="fact"><span class="fact-label">{esc(f.label)}</span>'
                     f'<span class="fact-value"{key}{exact}>{esc(f.value)}{unit}</span>'
                     f'{note}</div>')
    return Markup(f'<section class="headline" aria-label="headline figures">'
                  f'{"".join(cells)}</section>')


def banner(title: str, lines: list[str], cls: str = "warn") -> Markup:
    """A warning banner: a title in bold and what it is about."""
    if not lines and not title:
        return Markup("")
    body = tag("strong", title) + (items(lines) if lines else Markup(""))
    return Markup(f'<div class="banner {cls}" role="alert">{body}</div>')


def section(title: str, body, anchor: str) -> Markup:
    return Markup(f'<section id="{esc(anchor)}">{tag("h2", title)}\n{esc(body)}</section>')


def details(summary: str, body) -> Markup:
    """A part a reader opens if they want it (no script needed)."""
    return Markup(f"<details>{tag('summary', summary)}{esc(body)}</details>")


def links(found: list[tuple[str, str]], out: Path, inline: bool = False) -> Markup:
    """'Data: latency_results.csv, run.json' as links, relative to the page
    in out (the results' files beside it, or wherever --output put it);
    inline: the links alone, for a table's cell."""
    if not found:
        return Markup("")
    out_abs = os.path.abspath(out)
    parts = []
    for text, path in found:
        href = os.path.relpath(os.path.abspath(path), out_abs)
        parts.append(f'<a href="{esc(Path(href).as_posix())}">{esc(text)}</a>')
    if inline:
        return Markup(", ".join(parts))
    return Markup(f'<p class="data">Data: {", ".join(parts)}</p>')


def contents(entries: list[tuple[str, str]]) -> Markup:
    """A line of links to the page's sections."""
    if len(entries) < 2:
        return Markup("")
    return Markup('<nav class="toc">' + " · ".join(
        f'<a href="#{esc(anchor)}">{esc(title)}</a>' for title, anchor in entries) + "</nav>")


# Readable from 320 px to a wide screen: the page never scrolls sideways
# (tables and figures do, inside their own boxes, when they must); numbers
# right-aligned in tabular figures; colours that print.
CSS = """
:root { --fg: #1a1a1a; --muted: #555; --line: #d0d4d9; --head: #f2f4f7;
        --warn: #fff4d6; --warn-line: #d9a400; --bad: #fde4e4; --bad-line: #c62828;
        --ok: #e8f5e9; --link: #0b57d0; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { margin: 0 auto; padding: 0.75rem 1rem 3rem; max-width: 78rem; color: var(--fg);
       font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans",
       Arial, sans-serif; overflow-wrap: anywhere; }
h1 { font-size: 1.45rem; margin: 0.6rem 0 0.2rem; line-height: 1.25; }
h2 { font-size: 1.2rem; margin: 2rem 0 0.5rem; padding-bottom: 0.2rem;
     border-bottom: 2px solid var(--line); }
h3 { font-size: 1.02rem; margin: 1.2rem 0 0.4rem; }
p { margin: 0.4rem 0; }
a { color: var(--link); }
.sub { color: var(--muted); margin: 0 0 0.6rem; }
.note, .data, figcaption, caption { color: var(--muted); font-size: 0.9rem; }
.toc { font-size: 0.92rem; margin: 0.5rem 0 0.8rem; }
.headline { display: grid; grid-template-columns: repeat(auto-fill, minmax(11.5rem, 1fr));
            gap: 0.5rem; margin: 0.8rem 0; }
.fact { border: 1px solid var(--line); border-radius: 6px; padding: 0.5rem 0.7rem;
        background: var(--head); }
.fact-label { display: block; font-size: 0.85rem; color: var(--muted); }
.fact-value { display: block; font-size: 1.35rem; font-weight: 600;
              font-variant-numeric: tabular-nums; }
.fact-value small { font-size: 0.8rem; font-weight: 400; }
.fact-note { display: block; font-size: 0.8rem; color: var(--muted); }
.banner { border-left: 5px solid var(--warn-line); background: var(--warn);
          padding: 0.5rem 0.8rem; margin: 0.6rem 0; border-radius: 4px; }
.banner.bad { border-color: var(--bad-line); background: var(--bad); }
.banner ul { margin: 0.3rem 0 0; padding-left: 1.2rem; }
.scroll { overflow-x: auto; max-width: 100%; margin: 0.4rem 0 0.8rem; }
/* Borders drawn by each cell on its right and bottom (not collapsed): the
   sticky first column keeps its own when the table scrolls under it. */
table { border-collapse: separate; border-spacing: 0; font-size: 0.9rem;
        font-variant-numeric: tabular-nums; overflow-wrap: normal;
        border-top: 1px solid var(--line); border-left: 1px solid var(--line); }
caption { text-align: left; padding: 0.2rem 0; caption-side: top; }
th, td { border-right: 1px solid var(--line); border-bottom: 1px solid var(--line);
         padding: 0.25rem 0.5rem; vertical-align: top; background: var(--row, transparent); }
thead th { background: var(--head); text-align: left; }
th.num, td.num { text-align: right; white-space: nowrap; }
thead th.num { white-space: normal; }
table.pairs th { text-align: left; background: var(--head); font-weight: 600;
                 white-space: nowrap; }
table.pairs td { overflow-wrap: anywhere; }
tr.bad { --row: var(--bad); }
tr.knee { --row: var(--ok); }
tr.base td { font-weight: 600; }
/* A wide table scrolls in its box with its first column, which names the
   row, kept in view. */
.scroll td:first-child, .scroll th:first-child {
  position: sticky; left: 0; z-index: 1; background: var(--row, #fff);
  /* Its lines drawn inside it, above and to the right (the cell below
     paints over a line at its bottom when the rows' heights round). */
  border-right: 0; border-bottom: 0;
  box-shadow: inset -1px 0 0 var(--line), inset 0 1px 0 var(--line); }
.scroll tr:last-child td:first-child {
  box-shadow: inset -1px 0 0 var(--line), inset 0 1px 0 var(--line),
              inset 0 -1px 0 var(--line); }
.scroll thead th:first-child, table.pairs th { background: var(--head); }
figure { margin: 1rem 0 1.4rem; }
/* A figure at its own size (its width and height attributes), smaller
   when the page is narrower: never wider than the page, never blown up. */
figure svg, figure img { display: block; max-width: 100%; height: auto; }
.plot { overflow-x: auto; }
figcaption { margin-top: 0.3rem; }
details { margin: 0.5rem 0; }
summary { cursor: pointer; color: var(--link); }
footer { margin-top: 2.5rem; color: var(--muted); font-size: 0.85rem; }
@media (max-width: 40rem) {
  body { font-size: 14px; padding: 0.5rem 0.6rem 2rem; }
  .fact-value { font-size: 1.15rem; }
  .headline { grid-template-columns: repeat(auto-fill, minmax(9.5rem, 1fr)); }
  .scroll td:first-child, .scroll th:first-child { max-width: 9.5rem; }
  table.pairs th { white-space: normal; }
  /* On a phone a figure is drawn about a panel (6.5 inches) to the screen's
     width, in a box of its own that scrolls sideways from panel to panel:
     its text stays readable without zooming. */
  .plot svg, .plot img { max-width: none; width: calc(var(--inches) * 3.4rem); }
}
@media print { .scroll { overflow: visible; } a { color: inherit; } }
"""


def page(title: str, subtitle: str, parts: list, footer: str = "") -> str:
    """The whole file."""
    body = join(*parts)
    foot = tag("footer", footer) if footer else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
            f"{tag('h1', title)}\n{para(subtitle, 'sub') if subtitle else ''}\n{body}\n"
            f"{foot}\n</body>\n</html>\n")
