"""Checks a running CodexContinue server with the reference gRPC stack (grpcio).

Usage: check_grpc.py HOST:PORT

Prints the overall health status and every service listed by server reflection (v1alpha,
the version older tools such as grpcurl 1.8 speak), and exits non-zero unless the server is
SERVING and lists the seven CodexContinue services.
"""

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

API_SERVICES = [
    f"codexcontinue.v1.{name}"
    for name in (
        "ChatService",
        "MemoryService",
        "AuthService",
        "AdminService",
        "PluginService",
        "ModelService",
        "AuditService",
    )
]


def main(target: str) -> int:
    with grpc.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status
        status_name = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
        print(f"health: {status_name}")

        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        replies = reflection.ServerReflectionInfo(iter([request]), timeout=10)
        services = [s.name for r in replies for s in r.list_services_response.service]
        for name in services:
            print(f"service: {name}")

    missing = [name for name in API_SERVICES if name not in services]
    if status_name != "SERVING" or missing:
        print(f"FAILED: status {status_name}, missing {missing}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
