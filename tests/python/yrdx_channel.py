"""Shared by the Python client tests: the mutual-TLS channel from the command line, and a unary
method of yrdx.v1.Exchange resolved by server reflection (no generated code).

Only the TLS name override is set: every other channel option (metadata limits included) is
grpcio's default, as a partner's default client would have it.
"""
import json
import sys

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase


def channel_from_argv():
    """(channel, document path) from `ADDRESS CA CERT KEY DOCUMENT` on the command line."""
    address, ca, cert, key, document = sys.argv[1:6]
    creds = grpc.ssl_channel_credentials(
        root_certificates=open(ca, "rb").read(),
        private_key=open(key, "rb").read(),
        certificate_chain=open(cert, "rb").read(),
    )
    channel = grpc.secure_channel(address, creds, options=[("grpc.ssl_target_name_override", "localhost")])
    return channel, document


def exchange_method(channel, pool, name):
    """(callable, request class) of `yrdx.v1.Exchange/<name>`, its types read from `pool`."""
    m = pool.FindServiceByName("yrdx.v1.Exchange").methods_by_name[name]
    request_class = message_factory.GetMessageClass(m.input_type)
    reply_class = message_factory.GetMessageClass(m.output_type)
    call = channel.unary_unary(
        f"/yrdx.v1.Exchange/{name}",
        request_serializer=lambda x: x.SerializeToString(),
        response_deserializer=reply_class.FromString,
    )
    return call, request_class


def reflected_pool(channel):
    """(descriptor database, pool) read from the server's reflection service."""
    db = ProtoReflectionDescriptorDatabase(channel)
    return db, descriptor_pool.DescriptorPool(db)


def run_reporting_rpc_errors(main):
    """Runs a client test's `main`; a gRPC error it meets is printed as its one JSON object,
    {"error": "CODE: details"}, and the exit status is 1 (the Rust test reads both)."""
    try:
        main()
    except grpc.RpcError as e:
        print(json.dumps({"error": f"{e.code()}: {e.details()}"}))
        sys.exit(1)
