"""
analyze_page - what the tests of report.html share: the page taken apart
(its sections, headline figures, tables, figures, banners, links, and every
URL it could fetch), the figures of summary.json by the key the page names,
the numbers formatted the way a reader must see them (written here again,
not imported from the analysis), and headless Chromium: the page rendered
with the network off, its DOM after rendering, a screenshot, its layout at a
given width, and the requests it made.
"""
import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path


# ------------------------------------------------------------ the page taken apart


class Page(HTMLParser):
    """report.html as the tests look at it."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.html = text
        self.sections = []      # (id, heading)
        self.facts = []         # {"key", "value", "text", "label"}
        # {"head": [...], "rows": [[...]], "scrolls": in a box of its own,
        #  "cells": [(td or th, text, right-aligned)]}
        self.tables = []
        self.figures = []       # {"svg": bool, "img": src or None, "caption": str}
        self.banners = []       # {"cls", "text"}
        self.links = []         # href of every <a>
        self.fetches = []       # (tag, attribute, value): what a browser would fetch
        self.scripts = 0
        self.text = []          # the visible text, in order
        self._stack = []        # open elements: (tag, attrs)
        self._cell = None
        self._fact = None
        self._figure = None
        self._banner = None
        self._heading = None
        self._hidden = 0
        self._in_head = False
        self.feed(text)
        self.visible = re.sub(r"\s+", " ", " ".join(self.text)).strip()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = a.get("class", "") or ""
        if tag not in ("br", "img", "meta", "link", "input", "hr", "use", "path", "rect",
                       "circle", "line", "polyline", "polygon", "ellipse", "image", "stop"):
            self._stack.append((tag, a))
        if tag in ("style", "script", "title"):
            self._hidden += 1
        if tag == "script":
            self.scripts += 1
        for name in ("src", "href", "xlink:href", "data", "poster", "srcset", "action"):
            value = a.get(name)
            if value is not None and (tag != "a" or name != "href"):
                self.fetches.append((tag, name, value))
        if tag == "link":
            self.fetches.append((tag, "href", a.get("href", "")))
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        if tag == "section" and a.get("id"):
            self.sections.append([a["id"], ""])
        if tag == "h2":
            self._heading = []
        if tag == "table":
            scrolls = any(t == "div" and "scroll" in (x.get("class") or "")
                          for t, x in self._stack[:-1])
            self.tables.append({"head": [], "rows": [], "scrolls": scrolls, "cells": [],
                                "cls": cls})
        if tag == "thead":
            self._in_head = True
        if tag == "tr" and self.tables and not self._in_head:
            self.tables[-1]["rows"].append([])
        if tag in ("td", "th") and self.tables:
            self._cell = [tag, [], "num" in cls]
        if tag == "span" and "fact-value" in cls:
            self._fact = {"key": a.get("data-key", ""), "value": a.get("data-value"),
                          "text": []}
        if tag == "figure":
            self._figure = {"svg": False, "img": None, "caption": []}
        if tag == "svg" and self._figure is not None:
            self._figure["svg"] = True
        if tag == "img" and self._figure is not None:
            self._figure["img"] = a.get("src")
        if tag == "div" and "banner" in cls:
            self._banner = {"cls": cls, "text": []}

    def handle_endtag(self, tag):
        if tag in ("style", "script", "title"):
            self._hidden -= 1
        if tag == "h2" and self._heading is not None:
            if self.sections:
                self.sections[-1][1] = " ".join(self._heading).strip()
            self._heading = None
        if tag == "thead":
            self._in_head = False
        if tag in ("td", "th") and self._cell is not None and self.tables:
            kind, words, num = self._cell
            text = re.sub(r"\s+", " ", "".join(words)).strip()
            table = self.tables[-1]
            if self._in_head:
                table["head"].append(text)
            else:
                table["rows"][-1].append(text)
                table["cells"].append((kind, text, num))
            self._cell = None
        if tag == "span" and self._fact is not None:
            self._fact["text"] = re.sub(r"\s+", " ", "".join(self._fact["text"])).strip()
            self.facts.append(self._fact)
            self._fact = None
        if tag == "figure" and self._figure is not None:
            self._figure["caption"] = "".join(self._figure["caption"]).strip()
            self.figures.append(self._figure)
            self._figure = None
        if tag == "div" and self._banner is not None and self._stack \
                and "banner" in (self._stack[-1][1].get("class") or ""):
            self._banner["text"] = re.sub(r"\s+", " ", " ".join(self._banner["text"])).strip()
            self.banners.append(self._banner)
            self._banner = None
        while self._stack:
            top, _ = self._stack.pop()
            if top == tag:
                break

    def handle_data(self, data):
        if self._hidden:
            return
        self.text.append(data)
        if self._cell is not None:
            self._cell[1].append(data)
        if self._fact is not None:
            self._fact["text"].append(data)
        if self._heading is not None:
            self._heading.append(data)
        if self._banner is not None:
            self._banner["text"].append(data)
        if self._figure is not None and any(t == "figcaption" for t, _ in self._stack):
            self._figure["caption"].append(data)

    def section_ids(self):
        return [s for s, _ in self.sections]

    def fact(self, key):
        found = [f for f in self.facts if f["key"] == key]
        assert len(found) == 1, (key, [f["key"] for f in self.facts])
        return found[0]


# Namespaces name a vocabulary: no browser fetches them.
NAMESPACE = re.compile(r'xmlns(:\w+)?="[^"]*"')
URL = re.compile(r"(?:https?:|ftp:|wss?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}", re.IGNORECASE)


def external_urls(text):
    """Every URL to another machine in the page (namespace names aside)."""
    return URL.findall(NAMESPACE.sub("", text))


def lookup(summary, key):
    """summary.json's value at a dotted key; numbers index lists."""
    value = summary
    for part in key.split("."):
        value = value[int(part)] if isinstance(value, list) else value[part]
    return value


# ------------------------------------------------------- numbers as the reader sees them


def time_text(ns):
    """A time in the unit a reader is given: ns below 10 µs, µs below 10 ms."""
    if ns < 10_000:
        return f"{ns:,.1f}", "ns"
    if ns < 10_000_000:
        return f"{ns / 1e3:,.3f}", "µs"
    return f"{ns / 1e6:,.3f}", "ms"


def sig_text(value):
    """Four significant digits, thousands separated above 10,000."""
    return f"{value:,.0f}" if abs(value) >= 10_000 else f"{value:.4g}"


def ratio_text(value):
    return f"×{value:,.2f}" if value >= 0.01 else f"×{value:.2g}"


# ------------------------------------------------------------------ Chromium

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--hide-scrollbars",
         "--mute-audio", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]


def chromium():
    """Debian's chromium, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def no_network_prefix():
    """A command prefix that runs a program without any network (a network
    namespace of its own: only a loopback that is down), or [] when this
    machine cannot make one; the proxy flags then send every request to a
    port nobody answers."""
    unshare = shutil.which("unshare")
    for prefix in ([unshare, "--net"], [unshare, "--map-root-user", "--net"]):
        if unshare and subprocess.run([*prefix, "true"], capture_output=True,
                                      timeout=30).returncode == 0:
            return prefix
    return []


def browse(html_path, width, height=900, screenshot=None, dom=True, netlog=None,
           timeout=120):
    """Open html_path in headless Chromium (a fresh profile, the network off)
    at width x height; with screenshot, write a PNG of the window; return
    the DOM after rendering (--dump-dom), or "" with dom False."""
    browser = chromium()
    with tempfile.TemporaryDirectory(prefix="ivb-chromium-") as profile:
        args = [*no_network_prefix(), browser, *FLAGS, f"--user-data-dir={profile}",
                f"--window-size={width},{height}"]
        if netlog is not None:
            args.append(f"--log-net-log={netlog}")
        if screenshot is not None:
            args.append(f"--screenshot={screenshot}")
        elif dom:
            args.append("--dump-dom")
        args.append(Path(html_path).resolve().as_uri())
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "HOME": profile})
    if screenshot is not None:
        assert Path(screenshot).exists(), f"no screenshot: {proc.stderr[-2000:]}"
        return ""
    assert proc.returncode == 0 and proc.stdout.strip(), proc.stderr[-2000:]
    return proc.stdout


LAYOUT = """<script>
(function () {
  var root = document.documentElement, out = [];
  out.push("page " + root.scrollWidth + " " + root.clientWidth);
  document.querySelectorAll("table, figure, .headline, section").forEach(function (e) {
    var box = e.getBoundingClientRect();
    out.push(e.tagName + " " + Math.round(box.right) + " " + Math.round(box.width));
  });
  parent.document.body.setAttribute("data-layout", out.join(";"));
})();
</script>"""


def layout(html_path, width, workdir):
    """How the page lays out at width: (the page's scroll width, its client
    width, [(tag, right edge, width)] of its tables, figures, sections and
    headline). The page is shown in a frame of that width (headless Chromium
    keeps its window at least 500 px wide), as a copy with a script that
    measures it and writes the result into the frame's parent (the page
    itself has no script)."""
    text = Path(html_path).read_text().replace("</body>", LAYOUT + "</body>")
    copy = Path(workdir) / f"layout-{width}-{Path(html_path).parent.name}.html"
    copy.write_text(f'<!DOCTYPE html><html><body style="margin:0"><iframe style="width:{width}px;'
                    f'height:900px;border:0" srcdoc="{html.escape(text, quote=True)}"></iframe>'
                    "</body></html>")
    dom = browse(copy, max(width, 800))
    found = re.search(r'data-layout="([^"]*)"', dom)
    assert found, "the measuring script did not run"
    parts = found.group(1).split(";")
    _, scroll, client = parts[0].split()
    boxes = [(tag, int(right), int(w)) for tag, right, w in (p.split() for p in parts[1:])]
    return int(scroll), int(client), boxes


def page_requests(netlog):
    """The URLs the page itself asked the network for (the browser's own
    background requests, which no page makes, aside)."""
    data = json.loads(Path(netlog).read_text())
    types = {v: k for k, v in data["constants"]["logEventTypes"].items()}
    found = []
    for event in data["events"]:
        params = event.get("params") or {}
        if types.get(event["type"]) == "URL_REQUEST_START_JOB" and "url" in params \
                and str(params.get("network_isolation_key", "")).startswith("file://"):
            found.append(params["url"])
    return found


def pixels(png):
    """(share of pixels that are not the page's white, number of colours)
    of a screenshot."""
    from PIL import Image

    with Image.open(png) as im:
        rgb = im.convert("RGB")
        small = rgb.resize((rgb.width // 2, rgb.height // 2))
        data = list(small.getdata())
    ink = sum(1 for r, g, b in data if min(r, g, b) < 235)
    return ink / len(data), len(set(data))


# ------------------------------------------------------------ checks of any page

# What a column's name must carry when its cells are numbers: a unit, or
# what it counts.
UNITS = ("(", "msgs/s", "GB/s", "µs", "ns", "ms", "×", "/msg", "%", "round trips",
         "transfers", "messages", "samples", "size", "pixels")
NUMBER = re.compile(r"^[×x]?-?[0-9][0-9,]*(\.[0-9]+)?\*?( \(×[0-9.,e-]+\))?( BAD)?$")


def check_self_contained(page):
    """Nothing fetched: no script, no stylesheet or image from elsewhere,
    every reference inside the page or a data: URI, no URL to another
    machine anywhere in the file."""
    assert page.scripts == 0, "a script in the page"
    for tag, name, value in page.fetches:
        assert value.startswith(("#", "data:")), (tag, name, value[:80])
    assert external_urls(page.html) == [], external_urls(page.html)[:5]
    css = "".join(re.findall(r"<style>(.*?)</style>", page.html, re.DOTALL))
    assert "@import" not in css and not re.search(r"url\((?!#)", css)
    for href in page.links:
        assert not re.match(r"[a-z]+:", href), href  # a file beside it, or a section


def check_tables(page):
    """Every table in a box of its own (it scrolls there, never the page);
    a number column named with its unit; numbers right-aligned and with
    thousands separators."""
    for table in page.tables:
        assert table["scrolls"], table["head"]
        if "pairs" in table["cls"]:
            continue  # names and values as run.json has them: text
        cells = table["cells"]
        for kind, text, num in cells:
            if kind == "td" and NUMBER.match(text) and not re.match(r"^[0-9a-f]{16,}$", text):
                assert num, f"{text!r} is not right-aligned ({table['head']})"
                whole = re.sub(r"[^0-9,.]", "", text.split(" ")[0]).split(".")[0]
                assert not re.search(r"[0-9]{4}", whole), f"{text!r}: no thousands separator"
        if not table["head"] or "unit" in table["head"]:
            continue  # no header, or each row's unit in a column of its own
        columns = list(zip(*[r for r in table["rows"] if len(r) == len(table["head"])]))
        for name, column in zip(table["head"], columns):
            if column and all(NUMBER.match(c) or c == "-" for c in column) \
                    and any(NUMBER.match(c) for c in column):
                assert any(u in name for u in UNITS), f"column {name!r} has no unit"


def check_text(page):
    """No sign of a broken section in what a reader sees."""
    for word in ("Traceback", "None", "NaN", "nan ", "inf ", "undefined", "{", "}"):
        assert word not in page.visible, word


def check_facts(page, summary, wanted=()):
    """Each headline figure is summary.json's at the key it names, shown
    with its unit; the keys wanted are all there."""
    keys = [f["key"] for f in page.facts]
    for key in wanted:
        assert key in keys, (key, keys)
    for fact in page.facts:
        value = lookup(summary, fact["key"])
        assert fact["value"] == str(value), (fact, value)
    return {f["key"]: f for f in page.facts}
