#!/usr/bin/env python3
"""A body over server.body_limit sent with Python's http.client gets its 413, never a broken pipe.

The server refuses the request from its headers (Content-Length over the limit) while the client is still
writing the body; with a plain close the kernel resets the connection under the client's feet. Lingering close
(shut for writing, then read and drop the rest) lets the client finish and read the answer. 20 tries each at
2 MiB and 10 MiB, as the reliability issue measured. Usage: body_limit_test.py SQUAD_BIN SOURCE_DIR
"""
import http.client
import json
import sys

from serve import sim_config, squad_serve

squad_bin, source = sys.argv[1], sys.argv[2]
failures = []
with squad_serve(squad_bin, source, sim_config(source, "body_limit: 1048576")) as port:
    for size in (2 << 20, 10 << 20):
        body = b'{"model":"sim/m","messages":[{"role":"user","content":"' + b"x" * size + b'"}]}'
        got = []
        for i in range(20):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                c.request("POST", "/v1/chat/completions", body=body, headers={"Content-Type": "application/json"})
                r = c.getresponse()
                data = r.read()
                code = json.loads(data)["error"]["code"] if r.status == 413 else None
                got.append(r.status if code == "body_too_large" else f"{r.status}/{code}")
            except Exception as e:  # a broken pipe or a reset: what lingering close is for
                got.append(type(e).__name__)
            finally:
                c.close()
        ok = sum(1 for g in got if g == 413)
        print(f"{size >> 20} MiB: 413 in {ok} of 20 ({', '.join(sorted(set(map(str, got))))})")
        if ok != 20:
            failures.append(size)
    # A number past a double's range is a 400 (it once ended the whole server), and the server stays up.
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("POST", "/v1/chat/completions", body=b'{"model":"sim/m","x":1e999}',
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    print(f"1e999 in a body: {r.status}")
    if r.status != 400:
        failures.append("1e999")
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/healthz")
    if c.getresponse().status != 200:
        failures.append("healthz")
sys.exit(1 if failures else 0)
