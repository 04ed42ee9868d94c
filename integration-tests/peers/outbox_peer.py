"""Real receivers of the hub's outbox, for integration-tests/tests/outbox_sinks.rs.

  outbox_peer.py nats URL STREAM SUBJECT_PREFIX EXPECTED TIMEOUT
      Reads the JetStream stream from its start with an ephemeral ordered consumer
      until EXPECTED distinct events arrived (or TIMEOUT seconds), prints one JSON line
      per message, then the stream's own message count, and deletes the stream.
  outbox_peer.py rabbitmq URL QUEUE EXCHANGE EXPECTED TIMEOUT
      Drains the durable queue until EXPECTED distinct message ids arrived (or
      TIMEOUT), acking each; prints one JSON line per delivery; deletes queue and
      exchange.
  outbox_peer.py webhook PORT SECRET OUT_FILE
      Serves on 127.0.0.1:PORT; verifies every call with the Standard Webhooks
      reference library (wrong signatures answer 401 and are counted); appends one JSON
      line per accepted call to OUT_FILE.

Each message line: {"id", "type", "subject", "sequence", "hmsachseq", "header_id"}.
"""

import asyncio
import json
import sys
import time


def line(event, header_id, **extra):
    rec = {
        "id": event.get("id"),
        "type": event.get("type"),
        "subject": event.get("subject"),
        "sequence": event.get("sequence"),
        "hmsachseq": event.get("hmsachseq"),
        "header_id": header_id,
    }
    rec.update(extra)
    print(json.dumps(rec), flush=True)


async def nats_main(url, stream, prefix, expected, timeout):
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    seen = set()
    sub = await js.subscribe(f"{prefix}.>", stream=stream, ordered_consumer=True)
    deadline = time.monotonic() + timeout
    while len(seen) < expected and time.monotonic() < deadline:
        try:
            msg = await sub.next_msg(timeout=1)
        except Exception:
            continue
        event = json.loads(msg.data)
        header_id = (msg.headers or {}).get("Nats-Msg-Id")
        seen.add(event["id"])
        line(event, header_id, subject_nats=msg.subject)
    info = await js.stream_info(stream)
    print(json.dumps({"stream_messages": info.state.messages}), flush=True)
    await js.delete_stream(stream)
    await nc.close()


def rabbit_main(url, queue, exchange, expected, timeout):
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(url))
    ch = conn.channel()
    seen = set()
    deadline = time.monotonic() + timeout
    while len(seen) < expected and time.monotonic() < deadline:
        method, props, body = ch.basic_get(queue=queue, auto_ack=False)
        if method is None:
            time.sleep(0.1)
            continue
        event = json.loads(body)
        seen.add(props.message_id)
        line(
            event,
            props.message_id,
            routing_key=method.routing_key,
            persistent=props.delivery_mode == 2,
        )
        ch.basic_ack(method.delivery_tag)
    ch.queue_delete(queue=queue)
    ch.exchange_delete(exchange=exchange)
    conn.close()


def webhook_main(port, secret, out_file):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from standardwebhooks.webhooks import Webhook

    wh = Webhook(secret)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                event = wh.verify(body, headers)
            except Exception as e:  # a bad signature or stale timestamp
                with open(out_file, "a") as f:
                    f.write(json.dumps({"rejected": str(e)}) + "\n")
                self.send_response(401)
                self.end_headers()
                return
            with open(out_file, "a") as f:
                f.write(
                    json.dumps(
                        {
                            "id": event.get("id"),
                            "type": event.get("type"),
                            "subject": event.get("subject"),
                            "sequence": event.get("sequence"),
                            "hmsachseq": event.get("hmsachseq"),
                            "header_id": headers.get("webhook-id"),
                        }
                    )
                    + "\n"
                )
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "nats":
        asyncio.run(
            nats_main(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), float(sys.argv[6]))
        )
    elif kind == "rabbitmq":
        rabbit_main(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), float(sys.argv[6]))
    elif kind == "webhook":
        webhook_main(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        sys.exit(f"unknown receiver {kind}")
