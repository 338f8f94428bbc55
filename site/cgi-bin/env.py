#!/usr/bin/env python3
"""A CGI/1.1 script in Python: the meta-variables the server passed, as an HTML table.

Credentials are left out. A page that prints the request's Cookie hands an HttpOnly cookie to
any script on the same origin that can fetch it (the cookie's one protection gone), and the same
goes for Authorization and Proxy-Authorization.
"""
import html
import os

WITHHELD = {"HTTP_COOKIE", "HTTP_AUTHORIZATION", "HTTP_PROXY_AUTHORIZATION"}

rows = "\n".join(
    f"<tr><th>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
    for name, value in sorted(os.environ.items())
    if name not in WITHHELD
)
print("Content-Type: text/html; charset=utf-8")
print("Cache-Control: no-store")
print()
print(f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CGI environment</title>
<link rel="stylesheet" href="/style.css"></head>
<body><main><h1>CGI environment</h1>
<p>What <code>petrel serve</code> passed to this Python script (RFC 3875 meta-variables).
Cookies and credentials (HTTP_COOKIE, HTTP_AUTHORIZATION, HTTP_PROXY_AUTHORIZATION) are not shown.</p>
<table>
{rows}
</table>
<p><a href="/">Back</a></p></main></body></html>""")
