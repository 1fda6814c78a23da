#!/usr/bin/env python3
"""Slow clients cannot starve `squad serve`: while N connections from this address drip a request head a byte at
a time, /healthz on new connections stays fast, and the oldest dripping connections past
server.max_client_header_reads are closed (squad_connections_evicted_total). Usage: slow_clients_test.py
SQUAD_BIN SOURCE_DIR [N]. Python's standard library only.
"""
import http.client
import re
import resource
import socket
import sys
import threading
import time

from serve import sim_config, squad_serve

squad_bin, source = sys.argv[1], sys.argv[2]
want = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
n = min(want, hard - 200)

with squad_serve(squad_bin, source, sim_config(source, "max_client_header_reads: 256")) as port:
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Drip: " + b"a" * 4096
    conns, stop = [], threading.Event()

    def drip():
        i = 0
        while not stop.is_set():
            for c in list(conns):
                try:
                    c.send(head[i % len(head):i % len(head) + 1])
                except OSError:
                    conns.remove(c)  # closed by the server (evicted)
            i += 1
            stop.wait(1.0)

    failures = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.send(head[:1])
            conns.append(s)
        threading.Thread(target=drip, daemon=True).start()
        times = []
        for _ in range(200):
            t0 = time.perf_counter()
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                c.request("GET", "/healthz")
                ok = c.getresponse().status == 200
            except OSError as e:
                ok = False
                print("healthz failed:", e)
            finally:
                c.close()
            times.append(time.perf_counter() - t0)
            if not ok:
                failures.append("healthz")
            time.sleep(0.01)
        times.sort()
        p99 = times[int(len(times) * 0.99) - 1] * 1000
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/metrics")
        body = c.getresponse().read().decode()
        m = re.search(r'squad_connections_evicted_total\{reason="slow_first_request"\} (\d+)', body)
        evicted = int(m.group(1)) if m else 0
        print(f"{n} dripping connections: healthz p50 {times[len(times) // 2] * 1000:.1f} ms, p99 {p99:.1f} ms; "
              f"{evicted} evicted, {len(conns)} still open")
        if p99 > 50:
            failures.append(f"healthz p99 {p99:.1f} ms > 50 ms")
        if evicted < n - 256 - 5:
            failures.append(f"only {evicted} evicted")
    finally:
        stop.set()
        for c in conns:
            c.close()
    print("FAILED: " + "; ".join(failures) if failures else "ok")
    sys.exit(1 if failures else 0)
