#!/usr/bin/env python3
"""Serve a folder over HTTPS on 127.0.0.1 (a provider network mirror for `terraform init`).

Usage: serve_https.py DIR CERT KEY PORT_FILE
Terraform only talks to network mirrors over HTTPS; point SSL_CERT_FILE at CERT's CA.
Writes the chosen port to PORT_FILE once listening; logs each request path to stderr.
"""
import functools
import http.server
import os
import ssl
import sys


def main():
    root, cert, key, port_file = sys.argv[1:]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(httpd.server_address[1]))
    os.replace(port_file + ".tmp", port_file)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
