#!/usr/bin/env python3
"""A CGI/1.1 script in Python: every meta-variable the server passed, as an HTML table."""
import html
import os

rows = "\n".join(
    f"<tr><th>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
    for name, value in sorted(os.environ.items())
)
print("Content-Type: text/html; charset=utf-8")
print()
print(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CGI environment</title>
<link rel="stylesheet" href="/style.css"></head>
<body><main><h1>CGI environment</h1>
<p>What <code>petrel serve</code> passed to this Python script (RFC 3875 meta-variables).</p>
<table>
{rows}
</table>
<p><a href="/">Back</a></p></main></body></html>""")
