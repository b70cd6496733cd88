"""An independent gRPC client (Python grpcio) against the yrdx gateway.

Lists the services by server reflection, resolves yrdx.v1.Exchange/Submit from the reflected
descriptors (no generated code), and submits a document with a partner certificate.
usage: reflect_and_submit.py ADDRESS CA CERT KEY DOCUMENT
Prints one JSON object: {"services": [...], "submit": {...}} or {"error": "..."}.
"""
import json

from google.protobuf import json_format

from yrdx_channel import channel_from_argv, exchange_method, reflected_pool, run_reporting_rpc_errors


def main():
    channel, document = channel_from_argv()
    db, pool = reflected_pool(channel)
    services = sorted(db.get_services())
    submit, request_class = exchange_method(channel, pool, "Submit")
    reply = submit(request_class(document=open(document, "rb").read()), timeout=10)
    print(json.dumps({"services": services, "submit": json_format.MessageToDict(reply)}))


if __name__ == "__main__":
    run_reporting_rpc_errors(main)
