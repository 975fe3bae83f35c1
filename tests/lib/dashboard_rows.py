#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The event rows of the dashboard's event list, from a DOM dumped by headless chromium
(tests/lib/chromium.sh): prints {event id: the row's text} as JSON. Each row is a
<tr data-event="ID">; its text holds the status."""
import html.parser
import json
import sys


class Rows(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.cur = {}, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-event" in a:
            self.cur = a["data-event"]
            self.rows[self.cur] = ""

    def handle_data(self, data):
        if self.cur:
            self.rows[self.cur] += data

    def handle_endtag(self, tag):
        if tag == "tr":
            self.cur = None


def rows(text):
    p = Rows()
    p.feed(text)
    return p.rows


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: dashboard_rows.py DOM_FILE")
    with open(sys.argv[1], encoding="utf-8") as f:
        json.dump(rows(f.read()), sys.stdout)
    print()
