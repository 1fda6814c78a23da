"""`squad serve` for the Python tests: started on a config text with --listen 127.0.0.1:0, its port read from its
"listening on" line, its output drained so it never blocks, stopped with SIGTERM. Standard library only."""
import contextlib
import os
import re
import subprocess
import tempfile
import threading
import time


@contextlib.contextmanager
def squad_serve(squad_bin, source, config, timeout=20):
    """Yields the port of a `squad serve` running `config` (YAML text) with `source` as its working directory."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "squad.yaml")
        with open(path, "w") as f:
            f.write(config)
        p = subprocess.Popen([squad_bin, "serve", "--config", path, "--listen", "127.0.0.1:0",
                              "--storage", "sqlite:" + os.path.join(d, "squad.db")], cwd=source,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            port, out, deadline = None, "", time.time() + timeout
            while port is None and time.time() < deadline and p.poll() is None:
                line = p.stdout.readline()
                out += line
                m = re.search(r"listening on http://[^:\s]+:(\d+)", line)
                port = int(m.group(1)) if m else None
            if port is None:
                raise RuntimeError("squad serve did not start:\n" + out)
            threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
            yield port
        finally:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def sim_config(source, server=""):
    """One sim provider, the source tree's personas and workflows; `server`: the server section's YAML map body."""
    return (f"personas_dir: {source}/personas\nworkflows_dir: {source}/config/workflows\n"
            + (f"server: {{{server}}}\n" if server else "")
            + "providers:\n  sim:\n    kind: sim\n    models: {m: {id: sim-m, tier: worker}}\n")
