"""The official CloudEvents Python SDK talking to a running server (used by cloudevents.rs).

    post BASE TOKEN        build events with the SDK, POST them, print what was sent and answered
    read BASE KEY PATH     GET PATH with API key KEY as application/cloudevents+json, parse it
                           with from_http
"""

import json
import sys
import urllib.error
import urllib.request

from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent, from_http


def request(method, url, credential, headers, body=None):
    """`credential` is ("Authorization", "Bearer ...") or ("X-ACE-API-Key", key)."""
    headers = dict(headers, **dict([credential]))
    req = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def bearer(token):
    return ("Authorization", f"Bearer {token}")


def publish(base, token, headers, body):
    status, _, answer = request("POST", f"{base}/api/v1/messages", bearer(token), headers, body)
    return {"status": status, "answer": json.loads(answer)}


def post(base, token):
    order = CloudEvent(
        {
            "type": "com.example.order.created",
            "source": "https://shop.example/orders",
            "subject": "order-7",
            "dataschema": "https://shop.example/schemas/order.json",
            "tenant": "acme",
        },
        {"total": 12},
    )
    # Binary mode: the body's media type is the event's `datacontenttype` (the Content-Type).
    ping = CloudEvent(
        {"type": "com.example.ping", "source": "/pinger", "datacontenttype": "application/json"},
        {"ping": 1},
    )
    out = {"order": {"id": order["id"]}, "ping": {"id": ping["id"]}}
    headers, body = to_structured(order)
    out["order"]["first"] = publish(base, token, headers, body)
    out["order"]["again"] = publish(base, token, headers, body)
    headers, body = to_binary(ping)
    out["ping"]["binary"] = publish(base, token, headers, body)
    batch = [json.loads(to_structured(CloudEvent({"type": "com.example.batched", "source": "/b"}, {"n": n}))[1]) for n in range(2)]
    status, _, answer = request(
        "POST",
        f"{base}/api/v1/messages/batch",
        bearer(token),
        {"content-type": "application/cloudevents-batch+json"},
        json.dumps(batch).encode(),
    )
    out["batch"] = {"ids": [e["id"] for e in batch], "status": status, "answer": json.loads(answer)}
    print(json.dumps(out))


def read(base, key, path):
    status, headers, body = request(
        "GET", f"{base}{path}", ("X-ACE-API-Key", key), {"Accept": "application/cloudevents+json"}
    )
    if status != 200:
        raise SystemExit(f"GET {path}: {status} {body!r}")
    event = from_http(headers, body)
    attributes = dict(event.get_attributes())
    print(json.dumps({"attributes": attributes, "data": event.data, "headers": headers}, default=str))


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"post": post, "read": read}[command](*args)
