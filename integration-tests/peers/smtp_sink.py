"""A real SMTP server (aiosmtpd) that keeps every message it accepts, for the mail
integration tests (integration-tests/tests/mail.rs).

Each accepted message is saved twice into --out, atomically (written, then renamed):
NNNNNN.eml, the bytes as received, and NNNNNN.json, what the Python standard
library's email parser reads from them (headers, each MIME part decoded), so the
test checks the message as a mail client would see it, not lettre's encoding.

--delay slows each DATA (to stop the hub in the middle of a batch); --fail-first N
answers the first N messages with a temporary 451 (to see the hub retry).

Prints "ready PORT" once listening; runs until killed.
"""

import argparse
import asyncio
import email
import email.policy
import itertools
import json
import os
import signal
import sys
import threading

from aiosmtpd.controller import Controller


class Saver:
    def __init__(self, out, delay, fail_first):
        self.out = out
        self.delay = delay
        self.fail_first = fail_first
        self.counter = itertools.count(1)
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            if self.fail_first > 0:
                self.fail_first -= 1
                return "451 4.3.0 Temporary failure, try again later"
            n = next(self.counter)
        raw = envelope.original_content or envelope.content
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        parts = []
        for part in msg.walk():
            if part.is_multipart():
                continue
            parts.append({"type": part.get_content_type(), "content": part.get_content()})
        summary = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "headers": {k: str(v) for k, v in msg.items()},
            "content_type": msg.get_content_type(),
            "parts": parts,
        }
        base = os.path.join(self.out, f"{n:06d}")
        for ext, data in ((".eml", raw), (".json", json.dumps(summary).encode())):
            tmp = base + ext + ".tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.rename(tmp, base + ext)
        return "250 2.0.0 OK: queued"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--fail-first", type=int, default=0)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    controller = Controller(
        Saver(args.out, args.delay, args.fail_first),
        hostname="127.0.0.1",
        port=args.port,
        decode_data=False,
    )
    controller.start()
    print(f"ready {args.port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    controller.stop()
    sys.exit(0)


if __name__ == "__main__":
    main()
