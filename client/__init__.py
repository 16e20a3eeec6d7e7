"""kubelite's Kubernetes client library: REST client, informers, work queue, leader election.

Components import from here; see each module for the client-go concept it mirrors.
"""

from client.backoff import Backoff, jittered
from client.informer import (
    NAMESPACE_INDEX,
    Informer,
    SharedInformerFactory,
    Store,
    meta_key,
    namespace_index,
    split_meta_key,
)
from client.kubeconfig import (
    ClientConfig,
    ConfigError,
    in_cluster_config,
    load_kubeconfig,
    write_kubeconfig,
)
from client.leaderelection import LeaderElector, micro_time
from client.rest import (
    NO_RETRY,
    ApiClient,
    ApiConnectionError,
    PatchType,
    RetryPolicy,
    WatchEvent,
    resource_path,
)
from client.workqueue import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
    ShutDown,
    WorkQueue,
    default_controller_rate_limiter,
    run_workers,
)

__all__ = [
    "NAMESPACE_INDEX",
    "NO_RETRY",
    "ApiClient",
    "ApiConnectionError",
    "Backoff",
    "BucketRateLimiter",
    "ClientConfig",
    "ConfigError",
    "Informer",
    "ItemExponentialFailureRateLimiter",
    "LeaderElector",
    "MaxOfRateLimiter",
    "PatchType",
    "RateLimiter",
    "RetryPolicy",
    "SharedInformerFactory",
    "ShutDown",
    "Store",
    "WatchEvent",
    "WorkQueue",
    "default_controller_rate_limiter",
    "in_cluster_config",
    "jittered",
    "load_kubeconfig",
    "meta_key",
    "micro_time",
    "namespace_index",
    "resource_path",
    "run_workers",
    "split_meta_key",
    "write_kubeconfig",
]
