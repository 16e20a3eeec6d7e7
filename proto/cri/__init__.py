"""Generated gRPC stubs for the Kubernetes CRI subset in api.proto (runtime.v1)."""
