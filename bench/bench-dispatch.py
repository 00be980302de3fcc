#!/usr/bin/python3
# bench-dispatch.py — ours, through a Python (PyGObject) handler
#
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The small-GET run of bench-dispatch.c (mode "small" only) with the
# handler written in Python, to show what the binding costs per request.
# Needs /usr/bin/python3 (the one with gi) and the typelib of the build:
#   GI_TYPELIB_PATH=BUILD/libdispatch-gobject LD_LIBRARY_PATH=BUILD/libdispatch-gobject
# Prints the same JSON line as the C contenders.

import argparse
import json
import resource
import sys
import time

import gi

gi.require_version("Dispatch", "1")
gi.require_version("GLib", "2.0")
from gi.repository import Dispatch, GLib, GObject  # noqa: E402

CONTENDER = "ours-python"


def cpu_s():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def parse_args():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--url", required=True)
    p.add_argument("--mode", default="small", choices=["small"])
    p.add_argument("--requests", type=int, default=20000)
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--connections", type=int, default=-1)
    p.add_argument("--warmup", type=int, default=-1)
    p.add_argument("--timeout-s", type=float, default=120)
    args = p.parse_args()
    args.concurrency = max(1, min(args.concurrency, args.requests))
    if args.connections < 1:
        args.connections = args.concurrency
    if args.warmup < 0:
        args.warmup = max(2 * args.concurrency, 200)
    return args


class Handler(GObject.Object, Dispatch.Handler):
    def __init__(self, bench):
        super().__init__()
        self.bench = bench
        self.received = 0

    def do_on_response_data(self, controller, chunk):
        self.received += chunk.get_size()

    def do_on_response_end(self, controller, trailers):
        self.bench.done(self, None)

    def do_on_response_error(self, controller, error):
        self.bench.done(self, error)


class Bench:
    def __init__(self, args):
        self.args = args
        scheme, rest = args.url.split("://", 1)
        host, _, path = rest.partition("/")
        self.origin = f"{scheme}://{host}"
        self.path = "/" + path
        self.loop = GLib.MainLoop()
        self.agent = Dispatch.Agent(connections=args.connections,
                                    max_connections=max(256, args.connections))
        self.total = args.warmup + args.requests
        self.started = 0
        self.completed = 0
        self.failed = 0
        self.bytes = 0
        self.first_error = None
        self.t0 = time.monotonic()
        self.cpu0 = cpu_s()
        self.t1 = self.cpu1 = None

    def start_next(self):
        if self.started >= self.total:
            return
        self.started += 1
        request = Dispatch.Request.new("GET", self.origin, self.path)
        self.agent.dispatch(request, Handler(self))

    def done(self, handler, error):
        self.completed += 1
        self.bytes += handler.received
        if error is not None:
            self.failed += 1
            if self.first_error is None:
                self.first_error = error.message
        if self.completed == self.total - self.args.requests:
            self.t0 = time.monotonic()
            self.cpu0 = cpu_s()
        if self.completed == self.total:
            self.t1 = time.monotonic()
            self.cpu1 = cpu_s()
            self.loop.quit()
        else:
            self.start_next()

    def timed_out(self):
        print(json.dumps({"contender": CONTENDER, "mode": "small", "error": "timed out"}),
              flush=True)
        sys.exit(1)

    def run(self):
        GLib.timeout_add_seconds(int(self.args.timeout_s), self.timed_out)
        for _ in range(self.args.concurrency):
            self.start_next()
        self.loop.run()
        seconds = self.t1 - self.t0
        cpu = self.cpu1 - self.cpu0
        out = {
            "contender": CONTENDER, "mode": "small", "requests": self.args.requests,
            "concurrency": self.args.concurrency, "connections": self.args.connections,
            "errors": self.failed, "seconds": seconds, "rps": self.args.requests / seconds,
            "cpu_s": cpu, "cpu_ms_per_1000": cpu * 1e6 / self.args.requests,
            "bytes": self.bytes,
        }
        if self.first_error:
            out["first_error"] = self.first_error
        if self.failed == self.completed:
            out = {"contender": CONTENDER, "mode": "small", "error": self.first_error}
        print(json.dumps(out), flush=True)
        return 0 if "error" not in out else 1


if __name__ == "__main__":
    sys.exit(Bench(parse_args()).run())
