#!/usr/bin/env python3
"""The load and probe tool behind reliability/run (Python 3.11 stdlib only).

It starts the real `need-to-know serve` binary on 127.0.0.1 in front of its own upstream,
attacks and breaks it, and prints one line per figure, measured here, never assumed:

  probe.py crash   BIN WORKDIR      kill -9 under load, audit against what clients received
  probe.py disk    BIN WORKDIR      audit on a 1 MiB tmpfs that fills, then frees
  probe.py slow    BIN WORKDIR [KIND...]  slowloris, slow POST, slow read (loris post read;
                                   all three by default); a good client's p99
  probe.py many    BIN WORKDIR      10,000 connections below and above the connection cap

Raw asyncio sockets: the client sees exactly the bytes the gateway sent, and every figure
comes from a response (or a close) it really received.
"""

import asyncio
import hashlib
import json
import os
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

KEY = "reliability-probe-key-0123456789abcdef"
# The attackers' own key: another contractor (same type, its own budget). The threat is one
# recipient's key misbehaving; the promise is that the others do not feel it.
ATTACK_KEY = "reliability-probe-attacker-key-0123456789"
# `max_in_flight` of the type in the slow phase, per recipient (each its own budget); the
# good client has one request in flight at a time.
SLOW_MAX_IN_FLIGHT = 32

JOB = {
    "id": "J-1",
    "status": "scheduled",
    "priority": "urgent",
    "description": "Boiler not heating water",
    "contractor_id": "acme-repairs",
    "appointment": {"date": "2026-12-03", "slot": "AM"},
    "property": {"id": "P-1", "address": "12 Minster Yard, Lincoln LN2 1PX"},
    "tenant": {
        "id": "T-1",
        "name": "Joan Example",
        "phone": "07700 900142",
        "date_of_birth": "1961-04-09",
        "ni_number": "AB123456C",
    },
}
# The slow-read target: answers big enough that a few fill the socket buffers.
BIG_DESCRIPTION = 32 * 1024
WITHHELD = [b"1961-04-09", b"AB123456C"]

TYPE = """type = "repairs-contractor"
purpose = "Carry out repairs at the tenant's home"
lawful_basis = "contract"
{max_in_flight}
[[route]]
method = "GET"
path = "/jobs/{job_id}"
query = []
subjects = ["tenant.id"]
allow = ["id", "status", "priority", "description", "appointment", "property.address",
         "tenant.name", "tenant.phone"]

[[route]]
method = "POST"
path = "/jobs/{job_id}/notes"
query = []
subjects = []
allow = ["id"]
"""


# --- the upstream ------------------------------------------------------------------------


class Upstream:
    """A keep-alive HTTP/1.1 upstream answering every request with one JSON document."""

    def __init__(self, body: bytes):
        self.body = body
        big = dict(JOB, description="x" * BIG_DESCRIPTION)
        self.big = json.dumps(big).encode()
        self.server = None
        self.port = 0

    async def start(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0, backlog=4096)
        self.port = self.server.sockets[0].getsockname()[1]

    async def handle(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                body = self.big if b"/BIG " in head.split(b"\r\n", 1)[0] else self.body
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if length:
                    await reader.readexactly(length)
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
                    + str(len(body)).encode()
                    + b"\r\n\r\n"
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


class UpstreamProcess:
    """The upstream in its own process, so its sockets do not count against the client's
    descriptor limit (10,000 client connections can mean as many upstream ones)."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "upstream"], stdout=subprocess.PIPE, text=True
        )
        self.port = int(self.proc.stdout.readline())

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


async def serve_upstream():
    up = Upstream(json.dumps(JOB).encode())
    await up.start()
    print(up.port, flush=True)
    await asyncio.Event().wait()


# --- the gateway process -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    """`need-to-know serve` with its own config, rules and audit file in `workdir`."""

    def __init__(self, binary, workdir, upstream_port, audit=None, max_in_flight=None, **server):
        self.binary = binary
        self.dir = Path(workdir)
        self.port = free_port()
        self.admin = free_port()
        self.audit = Path(audit) if audit else self.dir / "audit" / "disclosures.jsonl"
        self.proc = None
        rules = self.dir / "rules"
        (rules / "types").mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(KEY.encode()).hexdigest()
        attacker = hashlib.sha256(ATTACK_KEY.encode()).hexdigest()
        (rules / "recipients.toml").write_text(
            '[[recipient]]\nid = "acme-repairs"\nname = "ACME Repairs Ltd"\n'
            f'type = "repairs-contractor"\napi_key_sha256 = "{digest}"\n\n'
            '[[recipient]]\nid = "rogue-repairs"\nname = "Rogue Repairs Ltd"\n'
            f'type = "repairs-contractor"\napi_key_sha256 = "{attacker}"\n'
        )
        (rules / "types" / "repairs-contractor.toml").write_text(
            TYPE.replace(
                "{max_in_flight}", f"max_in_flight = {max_in_flight}\n" if max_in_flight else ""
            )
        )
        opts = {
            "header_read_timeout": '"5s"',
            "write_stall_timeout": '"10s"',
            "max_connections": 2048,
        }
        opts.update({k: (f'"{v}"' if isinstance(v, str) else v) for k, v in server.items()})
        server_lines = "".join(f"{k} = {v}\n" for k, v in opts.items())
        self.config = self.dir / "need-to-know.toml"
        self.config.write_text(
            f'[server]\nlisten = "127.0.0.1:{self.port}"\n{server_lines}\n'
            f'[upstream]\nurl = "http://127.0.0.1:{upstream_port}/api"\ntimeout = "5s"\n\n'
            f'[rules]\ndir = "rules"\n\n[audit]\npath = "{self.audit}"\n\n'
            f'[admin]\nlisten = "127.0.0.1:{self.admin}"\n\n'
            '[limits]\nrequest_body_timeout = "5s"\n'
        )

    async def start(self):
        log = open(self.dir / "gateway.log", "ab")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--config", str(self.config)],
            stdout=log,
            stderr=log,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"gateway exited {self.proc.returncode}: see {log.name}")
            try:
                r, w = await asyncio.open_connection("127.0.0.1", self.admin)
                w.write(b"GET /readyz HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n")
                data = await r.read()
                w.close()
                if data.startswith(b"HTTP/1.1 200"):
                    return
            except OSError:
                pass
            await asyncio.sleep(0.05)
        raise SystemExit("gateway not ready within 20 s")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill9()

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def verify(self):
        out = subprocess.run(
            [self.binary, "audit", "verify", str(self.audit)], capture_output=True, text=True
        )
        return out.returncode == 0, (out.stdout + out.stderr).strip()

    def audit_records(self):
        records = []
        for line in self.audit.read_text(errors="replace").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                pass
        return records


# --- a minimal HTTP/1.1 client ------------------------------------------------------------


def request(path="/jobs/J-1", close=False, key=KEY) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {key}\r\n"
        + ("connection: close\r\n" if close else "")
        + "\r\n"
    ).encode()


async def read_response(reader):
    """(status, headers, body) of one response; raises on a close mid-response."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


class Load:
    """`clients` keep-alive clients sending GETs in a loop, reconnecting after any error.

    Every 200 is checked for withheld values and its x-request-id kept: those are the
    responses a recipient received, which the audit must hold.
    """

    def __init__(self, port, clients, max_requests=None):
        self.port = port
        self.max_requests = max_requests
        self.clients = clients
        self.running = asyncio.Event()
        self.stopped = False
        self.ok_ids = []
        self.statuses = {}
        self.errors = 0
        self.leaks = 0
        self.tasks = []

    def start(self):
        self.running.set()
        self.tasks = [asyncio.create_task(self.client()) for _ in range(self.clients)]

    async def stop(self):
        self.stopped = True
        self.running.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def client(self):
        writer = None
        while not self.stopped:
            await self.running.wait()
            if self.max_requests and sum(self.statuses.values()) >= self.max_requests:
                break
            try:
                if writer is None:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection("127.0.0.1", self.port), 2
                    )
                writer.write(request())
                status, headers, body = await asyncio.wait_for(read_response(reader), 10)
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if status == 200:
                    if any(w in body for w in WITHHELD):
                        self.leaks += 1
                    self.ok_ids.append(headers.get("x-request-id", ""))
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError):
                self.errors += 1
                if writer is not None:
                    writer.close()
                writer = None
                await asyncio.sleep(0.01)
        if writer is not None:
            writer.close()


# --- 4. crash consistency -----------------------------------------------------------------


async def crash(binary, workdir, rounds=20, clients=16):
    up = UpstreamProcess()
    gw = Gateway(binary, workdir, up.port)
    await gw.start()
    load = Load(gw.port, clients)
    load.start()
    verified = 0
    failures = []
    for _ in range(rounds):
        load.running.set()
        await asyncio.sleep(random.uniform(0.2, 1.5))
        gw.kill9()
        load.running.clear()
        await asyncio.sleep(0.05)
        await gw.start()
        ok, text = gw.verify()
        verified += ok
        if not ok:
            failures.append(text)
    load.running.set()
    await asyncio.sleep(0.5)
    await load.stop()
    gw.stop()
    up.stop()
    records = gw.audit_records()
    audited = {r.get("request_id") for r in records}
    missing = [i for i in load.ok_ids if i not in audited]
    recoveries = sum(1 for r in records if r.get("event") == "recovery")
    side_files = len(list(gw.audit.parent.glob(gw.audit.name + ".torn-*")))
    ok, _ = gw.verify()
    print(
        f"4 crash consistency: {rounds}/{rounds} kill -9 under {clients} clients, "
        f"{len(missing)} of {len(load.ok_ids)} acknowledged (200) responses missing from the "
        f"audit, audit verify ok {verified}/{rounds} after restart (final: "
        f"{'ok' if ok else 'FAILED'}, {len(records)} records), torn tails moved aside "
        f"{recoveries} (side files {side_files}), withheld values leaked {load.leaks}"
    )
    for f in failures[:3]:
        print(f"  verify failure: {f}")
    return not missing and verified == rounds and ok and not load.leaks


# --- 5. audit write failure on a real small filesystem ------------------------------------


async def disk(binary, workdir, mount):
    up = UpstreamProcess()
    audit = Path(mount) / "disclosures.jsonl"
    gw = Gateway(binary, workdir, up.port, audit=audit)
    await gw.start()
    filler = Path(mount) / "filler"
    # Leave ~48 KiB: a few dozen records fit, then every write fails with ENOSPC.
    st = os.statvfs(mount)
    free = st.f_bavail * st.f_frsize
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - 48 * 1024))
    full = Load(gw.port, 16)
    full.start()
    await asyncio.sleep(3)
    await full.stop()
    records = {r.get("request_id") for r in gw.audit_records()}
    unaudited_ok = [i for i in full.ok_ids if i not in records]
    ok_full, _ = gw.verify()
    # Space returns: the same process must serve and audit again, without a restart. 300
    # requests (about 250 KiB of records) fit in the space freed; more would fill it again.
    filler.unlink()
    after = Load(gw.port, 16, max_requests=300)
    after.start()
    await asyncio.sleep(2)
    await after.stop()
    records = {r.get("request_id") for r in gw.audit_records()}
    unaudited_after = [i for i in after.ok_ids if i not in records]
    ok_after, text = gw.verify()
    alive = gw.proc.poll() is None
    gw.stop()
    up.stop()
    n503 = full.statuses.get(503, 0)
    other = {k: v for k, v in full.statuses.items() if k not in (200, 503)}
    print(
        f"5 audit write failure (tmpfs 1 MiB, filled): {n503} answered 503, "
        f"{full.statuses.get(200, 0)} answered 200 while space lasted, "
        f"{len(unaudited_ok)} responses (200) without a record, other statuses {other or 'none'}; "
        f"space freed: {after.statuses.get(200, 0)} of {sum(after.statuses.values())} "
        "answered 200 with no restart "
        f"({len(unaudited_after)} without a record, 503s {after.statuses.get(503, 0)}), "
        f"audit verify {'ok' if ok_full and ok_after else 'FAILED: ' + text}, "
        f"gateway {'still running' if alive else 'EXITED'}"
    )
    return not unaudited_ok and not unaudited_after and n503 > 0 and after.statuses.get(200)


# --- 7. slow and many clients -------------------------------------------------------------


async def good_client(port, seconds):
    """Latencies (ms) of one well-behaved keep-alive client for `seconds`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lat = []
    errors = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.perf_counter()
        try:
            writer.write(request())
            status, _, _ = await asyncio.wait_for(read_response(reader), 10)
            if status != 200:
                errors += 1
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
            errors += 1
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            continue
        lat.append((time.perf_counter() - t) * 1000)
        await asyncio.sleep(0.002)
    writer.close()
    return lat, errors


async def good_client_process(port, seconds):
    """[`good_client`] in its own process, so the attackers' coroutines in this one cannot
    delay it: what it measures is the gateway."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "good", str(port), str(seconds), stdout=subprocess.PIPE
    )
    out, _ = await proc.communicate()
    result = json.loads(out)
    return result["lat"], result["errors"]


def p99(lat):
    return statistics.quantiles(lat, n=100)[98] if len(lat) >= 100 else float("nan")


async def attacker(port, kind, closes, limit):
    """One slow connection; appends to `closes` whether and when the server closed it."""
    if kind == "read":
        await slow_reader(port, closes, limit)
        return
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        closes.append(("connect failed", 0))
        return
    t0 = time.monotonic()
    state = "open"
    try:
        if kind == "loris":
            writer.write(b"GET /jobs/J-1 HTTP/1.1\r\nhost: gw\r\n")
        else:
            writer.write(
                f"POST /jobs/J-1/notes HTTP/1.1\r\nhost: gw\r\nauthorization: Bearer {ATTACK_KEY}\r\n"
                "content-type: application/json\r\ncontent-length: 10000\r\n\r\n[".encode()
            )
        await writer.drain()
        eof = asyncio.create_task(drain_reader(reader))
        while time.monotonic() - t0 < limit:
            await asyncio.sleep(1)
            if eof.done():
                state = "closed"
                break
            writer.write(b"x-a: b\r\n" if kind == "loris" else b"1")
            await writer.drain()
    except (OSError, asyncio.IncompleteReadError):
        state = "closed"
    closes.append((state, time.monotonic() - t0))
    writer.close()


async def slow_reader(port, closes, limit):
    """Slow read: 8 pipelined GETs of a 32 KiB answer through a 2 KiB receive buffer, read a
    byte a second. Whether the server gave up is seen at `limit`: draining then reaches the
    end of the stream (or a reset) only if the server had closed it; a live connection would
    instead deliver the rest and wait for the next request."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    sock.setblocking(False)
    try:
        await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), 30)
        await loop.sock_sendall(sock, request("/jobs/BIG", key=ATTACK_KEY) * 8)
    except (OSError, asyncio.TimeoutError):
        closes.append(("connect failed", 0))
        sock.close()
        return
    t0 = time.monotonic()
    state = "open"
    try:
        while time.monotonic() - t0 < limit:
            try:
                if await asyncio.wait_for(loop.sock_recv(sock, 1), 1) == b"":
                    state = "closed"
                    break
            except asyncio.TimeoutError:
                pass
            await asyncio.sleep(1)
        while state == "open":
            if await asyncio.wait_for(loop.sock_recv(sock, 65536), 2) == b"":
                state = "closed"
    except asyncio.TimeoutError:
        pass
    except OSError:
        state = "closed"
    closes.append((state, time.monotonic() - t0))
    sock.close()


async def drain_reader(reader):
    """Reads whatever the server sends until it closes (a 408 or 400, then EOF)."""
    try:
        while await reader.read(4096):
            pass
    except OSError:
        pass


async def slow(binary, workdir, conns=1000, limit=30, kinds=("loris", "post", "read")):
    """Slowloris and slow POST run against a gateway without `max_in_flight`, so only the
    header and body timeouts can be what closes them; slow read runs against one with it (one
    recipient's unread answers otherwise load the gateway for everyone). Each gateway's good
    client is compared with its own baseline."""
    up = UpstreamProcess()
    ok = True
    for sub, mif, group in [
        ("timeouts", None, [("loris", "slowloris"), ("post", "slow POST")]),
        ("in-flight", SLOW_MAX_IN_FLIGHT, [("read", "slow read")]),
    ]:
        group = [(k, n) for k, n in group if k in kinds]
        if group:
            ok = await slow_group(binary, Path(workdir) / sub, up, mif, group, conns, limit) and ok
    up.stop()
    return ok


async def slow_group(binary, workdir, up, max_in_flight, group, conns, limit):
    workdir.mkdir(parents=True, exist_ok=True)
    gw = Gateway(binary, workdir, up.port, max_in_flight=max_in_flight, max_connections=2048)
    await gw.start()
    base, base_err = await good_client_process(gw.port, 8)
    base_p99 = p99(base)
    setting = f"max_in_flight {max_in_flight}" if max_in_flight else "no max_in_flight"
    print(
        f"7 baseline ({setting}): well-behaved client p99 {base_p99:.2f} ms over {len(base)} "
        f"requests (median {statistics.median(base):.2f} ms, {base_err} errors)"
    )
    ok = True
    for kind, name in group:
        closes = []
        rss0 = gw.rss_kib()
        seconds = 20 if kind == "read" else limit
        attack = asyncio.gather(
            *(attacker(gw.port, kind, closes, seconds) for _ in range(conns))
        )
        await asyncio.sleep(1)
        lat, err = await good_client_process(gw.port, 8)
        rss1 = gw.rss_kib()
        await attack
        closed = sorted(t for s, t in closes if s == "closed")
        still = sum(1 for s, _ in closes if s == "open")
        failed = sum(1 for s, _ in closes if s == "connect failed")
        attack_p99 = p99(lat)
        ratio = attack_p99 / base_p99
        shown = f"{attack_p99:.2f} ms" if len(lat) >= 100 else f"n/a (only {len(lat)} answers)"
        if kind == "read":
            when = f"(write_stall_timeout 10 s; seen at the drain after {seconds} s)"
        elif closed:
            when = (
                f"after {closed[0]:.1f}-{closed[-1]:.1f} s (median "
                f"{statistics.median(closed):.1f} s; timeouts 5 s)"
            )
        else:
            when = ""
        print(
            f"7 {name}: {len(closed)}/{conns} connections closed by the server {when}, "
            f"{still} still open at {seconds} s, {failed} refused at connect; good client p99 "
            f"{shown} vs baseline {base_p99:.2f} ms = {ratio:.2f}x "
            f"({len(lat)} requests, {err} errors); gateway RSS {rss0 // 1024} -> "
            f"{rss1 // 1024} MiB"
        )
        ok = ok and still == 0 and len(lat) >= 100 and ratio <= 2 and err == 0
        await asyncio.sleep(1)
    gw.stop()
    return ok


class Crowd:
    """Many connections: each connects, sends one request (at most `inflight` at once, so the
    figure is about connections, not a request burst the test upstream cannot take), gets its
    answer, and stays open until everyone has been answered (`hold` None) or for `hold` s."""

    def __init__(self, port, n, inflight=256, hold=None):
        self.port, self.n, self.hold = port, n, hold
        self.sem = asyncio.Semaphore(inflight)
        self.results = []
        self.open = 0
        self.peak_open = 0
        self.everyone = asyncio.Event()

    def finish(self, result):
        self.results.append(result)
        if len(self.results) == self.n:
            self.everyone.set()

    async def one(self):
        writer = None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", self.port), 60
            )
            self.open += 1
            self.peak_open = max(self.peak_open, self.open)
            async with self.sem:
                writer.write(request())
                status, _, _ = await asyncio.wait_for(read_response(reader), 60)
            self.finish(status)
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as e:
            self.finish(type(e).__name__)
        if writer is not None:
            if self.hold is None:
                await self.everyone.wait()
                await asyncio.sleep(1)
            else:
                await asyncio.sleep(self.hold)
            self.open -= 1
            writer.close()


async def many(binary, workdir, n=10000):
    up = UpstreamProcess()
    ok = True
    for cap, label, hold in [(n + 1024, "below", None), (2048, "above", 3)]:
        sub = Path(workdir) / f"cap-{cap}"
        sub.mkdir()
        gw = Gateway(binary, sub, up.port, max_connections=cap, header_read_timeout="60s")
        await gw.start()
        rss0 = gw.rss_kib()
        crowd = Crowd(gw.port, n, hold=hold)
        t0 = time.monotonic()
        tasks = [asyncio.create_task(crowd.one()) for _ in range(n)]
        peak = rss0
        while not all(t.done() for t in tasks):
            await asyncio.sleep(0.25)
            peak = max(peak, gw.rss_kib())
        took = time.monotonic() - t0
        rss1 = gw.rss_kib()
        answered = sum(1 for r in crowd.results if r == 200)
        errors = {}
        for r in crowd.results:
            if r != 200:
                errors[str(r)] = errors.get(str(r), 0) + 1
        held = "held open together" if hold is None else f"each held {hold} s"
        print(
            f"7 {n} connections, {label} the cap (max_connections {cap}, {held}): "
            f"{answered}/{n} answered 200 in {took:.1f} s, errors {errors or 0}, at most "
            f"{crowd.peak_open} open at once (client side); gateway RSS {rss0 // 1024} MiB "
            f"before, peak {peak // 1024} MiB, {rss1 // 1024} MiB after"
        )
        if label == "below":
            ok = ok and answered == n and crowd.peak_open == n
        gw.stop()
    up.stop()
    return ok


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if sys.argv[1] == "upstream":
        asyncio.run(serve_upstream())
        return
    if sys.argv[1] == "good":
        lat, errors = asyncio.run(good_client(int(sys.argv[2]), float(sys.argv[3])))
        print(json.dumps({"lat": lat, "errors": errors}))
        return
    cmd, binary, workdir = sys.argv[1], sys.argv[2], sys.argv[3]
    if cmd == "crash":
        ok = asyncio.run(crash(binary, workdir, int(os.environ.get("ROUNDS", "20"))))
    elif cmd == "disk":
        ok = asyncio.run(disk(binary, workdir, sys.argv[4]))
    elif cmd == "slow":
        conns, limit = int(os.environ.get("CONNS", "1000")), int(os.environ.get("LIMIT", "30"))
        kinds = sys.argv[4:] or ("loris", "post", "read")
        ok = asyncio.run(slow(binary, workdir, conns, limit, kinds))
    elif cmd == "many":
        ok = asyncio.run(many(binary, workdir, int(os.environ.get("MANY", "10000"))))
    else:
        raise SystemExit(f"unknown command {cmd}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
