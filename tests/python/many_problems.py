"""A default Python grpcio client submits a document with many problems to the yrdx gateway.

The channel keeps grpcio's default metadata limits (soft 8 KiB, hard 16 KiB): the refusal must
arrive as INVALID_ARGUMENT with its BadRequest trailer, not as RESOURCE_EXHAUSTED. Then it calls
Exchange.Check (resolved by server reflection, no generated code) to read every problem.
usage: many_problems.py ADDRESS CA CERT KEY DOCUMENT
Prints one JSON object: {"submit": {...}, "check": {...}}.
"""
import json

import grpc
from google.protobuf import json_format

from yrdx_channel import channel_from_argv, exchange_method, reflected_pool, run_reporting_rpc_errors


def fields(data):
    """Splits protobuf bytes into (field number, value) pairs (varints and length-delimited only)."""
    out, i = [], 0
    while i < len(data):
        key, i = varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(data, i)
        elif wire == 2:
            size, i = varint(data, i)
            value, i = data[i:i + size], i + size
        else:
            raise ValueError(f"unexpected wire type {wire}")
        out.append((number, value))
    return out


def varint(data, i):
    shift = result = 0
    while True:
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, i


def bad_request_violations(status_bytes):
    """The (field, description) pairs of the google.rpc.BadRequest in a google.rpc.Status."""
    violations = []
    for number, any_bytes in fields(status_bytes):
        if number != 3:
            continue
        parts = dict(fields(any_bytes))
        if not parts.get(1, b"").endswith(b"google.rpc.BadRequest"):
            continue
        for n, v in fields(parts.get(2, b"")):
            if n == 1:
                f = dict(fields(v))
                violations.append((f.get(1, b"").decode(), f.get(2, b"").decode()))
    return violations


def main():
    channel, document = channel_from_argv()
    _, pool = reflected_pool(channel)

    def method(name):
        return exchange_method(channel, pool, name)

    bytes_ = open(document, "rb").read()
    submit, submit_request = method("Submit")
    result = {}
    try:
        submit(submit_request(document=bytes_), timeout=30)
        result["submit"] = {"code": "OK"}
    except grpc.RpcError as e:
        trailer = b""
        for k, v in e.trailing_metadata() or ():
            if k == "grpc-status-details-bin":
                trailer = v
        violations = bad_request_violations(trailer) if trailer else []
        result["submit"] = {
            "code": e.code().name,
            "details": e.details(),
            "trailer_bytes": len(trailer),
            "violations": len(violations),
            "first": violations[0] if violations else None,
            "last": violations[-1] if violations else None,
        }
    check, check_request = method("Check")
    reply = check(check_request(document=bytes_), timeout=30)
    problems = list(reply.problems)
    result["check"] = {
        "valid": reply.valid,
        "problems": len(problems),
        "truncated": reply.truncated,
        "paths": [p.path for p in problems],
        "first": json_format.MessageToDict(problems[0]) if problems else None,
    }
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    run_reporting_rpc_errors(main)
