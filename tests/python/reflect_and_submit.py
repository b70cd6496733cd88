"""An independent gRPC client (Python grpcio) against the yrdx gateway.

Lists the services by server reflection, resolves yrdx.v1.Exchange/Submit from the reflected
descriptors (no generated code), and submits a document with a partner certificate.
usage: reflect_and_submit.py ADDRESS CA CERT KEY DOCUMENT
Prints one JSON object: {"services": [...], "submit": {...}} or {"error": "..."}.
"""
import json
import sys

import grpc
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase


def main():
    address, ca, cert, key, document = sys.argv[1:6]
    creds = grpc.ssl_channel_credentials(
        root_certificates=open(ca, "rb").read(),
        private_key=open(key, "rb").read(),
        certificate_chain=open(cert, "rb").read(),
    )
    channel = grpc.secure_channel(address, creds, options=[("grpc.ssl_target_name_override", "localhost")])
    db = ProtoReflectionDescriptorDatabase(channel)
    services = sorted(db.get_services())
    pool = descriptor_pool.DescriptorPool(db)
    service = pool.FindServiceByName("yrdx.v1.Exchange")
    method = service.methods_by_name["Submit"]
    request_class = message_factory.GetMessageClass(method.input_type)
    reply_class = message_factory.GetMessageClass(method.output_type)
    submit = channel.unary_unary(
        "/yrdx.v1.Exchange/Submit",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=reply_class.FromString,
    )
    reply = submit(request_class(document=open(document, "rb").read()), timeout=10)
    print(json.dumps({"services": services, "submit": json_format.MessageToDict(reply)}))


if __name__ == "__main__":
    try:
        main()
    except grpc.RpcError as e:
        print(json.dumps({"error": f"{e.code()}: {e.details()}"}))
        sys.exit(1)
