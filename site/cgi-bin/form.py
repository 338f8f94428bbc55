#!/usr/bin/env python3
"""A CGI/1.1 script that reads a POSTed form from stdin (CONTENT_LENGTH bytes) and echoes it."""
import html
import os
import sys
from urllib.parse import parse_qsl

method = os.environ.get("REQUEST_METHOD", "GET")
fields = []
if method == "POST":
    length = int(os.environ.get("CONTENT_LENGTH") or 0)
    body = sys.stdin.buffer.read(length).decode("utf-8", "replace")
    fields = parse_qsl(body, keep_blank_values=True)

items = "\n".join(f"<li><b>{html.escape(k)}</b> = {html.escape(v)}</li>" for k, v in fields)
answer = f"<h2>You sent</h2><ul>\n{items}\n</ul>" if method == "POST" else ""
print("Content-Type: text/html; charset=utf-8")
print()
print(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CGI form</title>
<link rel="stylesheet" href="/style.css"></head>
<body><main><h1>A form, answered by a CGI script</h1>
<form method="post" action="/cgi-bin/form.py">
<label>Name <input name="name" value="Petrel"></label>
<label>Message <input name="message" value="Hello, CGI!"></label>
<button>Send</button>
</form>
{answer}
<p><a href="/">Back</a></p></main></body></html>""")
