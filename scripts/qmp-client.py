#!/usr/bin/env python3
"""A small QMP client for Ferry (or QEMU).

  scripts/qmp-client.py SOCKET COMMAND ['{"arg": "value"}']
  scripts/qmp-client.py SOCKET --events SECONDS     # print events as they come

Connects to a QMP unix socket, negotiates capabilities, runs one command
and prints its reply as JSON. Exit status 1 on an error reply.
"""
import json
import socket
import sys
import time


class QMPClient:
    def __init__(self, path, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)    # the VMM has not created its socket yet
        self.file = self.sock.makefile("rwb")
        self.greeting = self._read()
        self.command("qmp_capabilities")

    def _read(self):
        line = self.file.readline()
        if not line:
            raise EOFError("QMP connection closed")
        return json.loads(line)

    def command(self, name, args=None):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.file.write(json.dumps(msg).encode() + b"\n")
        self.file.flush()
        while True:
            reply = self._read()
            if "event" in reply:
                continue
            return reply

    def events(self, seconds):
        self.sock.settimeout(seconds)
        try:
            while True:
                yield self._read()
        except (socket.timeout, TimeoutError):
            return


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    client = QMPClient(sys.argv[1])
    if sys.argv[2] == "--events":
        for ev in client.events(float(sys.argv[3]) if len(sys.argv) > 3 else 10.0):
            print(json.dumps(ev))
        return
    args = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
    reply = client.command(sys.argv[2], args)
    print(json.dumps(reply, indent=2))
    sys.exit(1 if "error" in reply else 0)


if __name__ == "__main__":
    main()
