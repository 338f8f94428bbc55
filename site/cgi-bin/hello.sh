#!/bin/sh
# A CGI/1.1 script in plain sh: the head, a blank line, then the body.
printf 'Content-Type: text/plain; charset=utf-8\r\n'
printf 'Cache-Control: no-store\r\n'
printf '\r\n'
echo "Hello from a shell script, run by Petrel's CGI gateway."
echo
echo "GATEWAY_INTERFACE=$GATEWAY_INTERFACE"
echo "SERVER_SOFTWARE=$SERVER_SOFTWARE"
echo "REQUEST_METHOD=$REQUEST_METHOD"
echo "SCRIPT_NAME=$SCRIPT_NAME"
echo "PATH_INFO=$PATH_INFO"
echo "QUERY_STRING=$QUERY_STRING"
echo "REMOTE_ADDR=$REMOTE_ADDR"
echo "time: $(date -u '+%Y-%m-%dT%H:%M:%SZ')"
