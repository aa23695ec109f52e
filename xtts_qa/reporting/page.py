"""The shared HTML shell of xtts_qa's pages: one inline stylesheet, no scripts, no network assets."""

from __future__ import annotations

from html import escape
from typing import Any

__all__ = ["page", "table", "badge", "fmt"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#1d2329;background:#f6f7f9}
main{max-width:1280px;margin:0 auto;padding:18px 24px 48px}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d6dbe1;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
section.card{background:#fff;border:1px solid #dfe3e8;border-radius:6px;padding:10px 16px;margin:12px 0}
table{border-collapse:collapse;margin:6px 0 10px;background:#fff}
th,td{border:1px solid #e1e5ea;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff}
.pass{background:#2e8540}.fail{background:#c0392b}.warn{background:#c77c02}.skip{background:#7b8794}.info{background:#2f6f9f}
.muted{color:#66707a}.mono{font-family:ui-monospace,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:12px}
.plots{display:flex;flex-wrap:wrap;gap:12px}.plots svg{background:#fff;border:1px solid #e1e5ea;border-radius:4px}
.players{display:flex;gap:6px;flex-wrap:wrap}.players figure{margin:0}.players figcaption{font-size:11px;color:#66707a}
audio{width:210px;height:32px}
details summary{cursor:pointer;color:#2f6f9f}
"""


def fmt(value: Any, digits: int = 3) -> str:
    """A number for a table cell (``-`` when absent)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return escape(str(value))


def badge(text: str, kind: str) -> str:
    """A coloured verdict label; ``kind`` is pass, fail, warn, skip or info."""
    return f'<span class="badge {kind}">{escape(text)}</span>'


def table(headers: list[str], rows: list[list[str]], *, cls: str = "") -> str:
    """An HTML table; cells are already-escaped HTML."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{c}</td>" if not c.startswith("<td") else c for c in row) + "</tr>" for row in rows
    )
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def page(title: str, body: str) -> str:
    """A complete, self-contained HTML document."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )
