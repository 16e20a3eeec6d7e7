"""OpenAPI documents: /openapi/v3 (per group-version) and /openapi/v2 (Swagger 2.0 JSON).

kubectl 1.32 reads the v3 documents for three things (see docs/kubectl-compat-notes.md):
- `kubectl apply` asks whether the server does field validation by finding the PATCH
  operation whose `x-kubernetes-group-version-kind` is the object's kind and looking for a
  `fieldValidation` parameter on it;
- client-side apply computes its strategic merge patch from the kind's component schema
  (found by its `x-kubernetes-group-version-kind` list) and the `x-kubernetes-patch-*`
  extensions on list fields, after checking that PATCH accepts
  `application/strategic-merge-patch+json`;
- `kubectl explain` finds the kind through the GVK on the resource's operations, then walks
  properties, `$ref`, `allOf`, `items` and `additionalProperties`, printing descriptions.

All schemas are written once below, in a neutral form whose `$ref` holds a bare schema name;
`_to_v3` and `_to_v2` turn that into `#/components/schemas/...` or `#/definitions/...`.
Parts we do not model in detail are objects with `x-kubernetes-preserve-unknown-fields`, so
nothing here ever makes a client reject a valid manifest.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from api.resources import SUBRESOURCE_KINDS, Catalogue, Resource

Schema = dict[str, Any]

CORE = "io.k8s.api.core.v1."
APPS = "io.k8s.api.apps.v1."
BATCH = "io.k8s.api.batch.v1."
COORDINATION = "io.k8s.api.coordination.v1."
DISCOVERY = "io.k8s.api.discovery.v1."
AUTOSCALING = "io.k8s.api.autoscaling.v1."
POLICY = "io.k8s.api.policy.v1."
RBAC = "io.k8s.api.rbac.v1."
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
TIME = META + "Time"
MICRO_TIME = META + "MicroTime"

V3_REF_PREFIX = "#/components/schemas/"
V2_REF_PREFIX = "#/definitions/"

PATCH_CONTENT_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)


# ---------------------------------------------------------------------------------------------
# small builders for the schema table


def _string(description: str, *, enum: list[str] | None = None, fmt: str = "") -> Schema:
    schema: Schema = {"type": "string", "description": description}
    if enum:
        schema["enum"] = enum
    if fmt:
        schema["format"] = fmt
    return schema


def _int32(description: str) -> Schema:
    return {"type": "integer", "format": "int32", "description": description}


def _int64(description: str) -> Schema:
    return {"type": "integer", "format": "int64", "description": description}


def _bool(description: str) -> Schema:
    return {"type": "boolean", "description": description}


def _ref(name: str, description: str = "") -> Schema:
    schema: Schema = {"$ref": name}
    if description:
        schema["description"] = description
    return schema


def _strings(description: str, *, list_type: str = "atomic") -> Schema:
    return {
        "type": "array",
        "items": {"type": "string"},
        "description": description,
        "x-kubernetes-list-type": list_type,
    }


def _array(
    items: Schema | str,
    description: str,
    *,
    merge_key: str = "",
    strategy: str = "",
    map_keys: tuple[str, ...] = (),
) -> Schema:
    """A list field. merge_key/strategy are the strategic-merge-patch metadata kubectl reads."""
    schema: Schema = {
        "type": "array",
        "items": _ref(items) if isinstance(items, str) else items,
        "description": description,
    }
    if map_keys:
        schema["x-kubernetes-list-type"] = "map"
        schema["x-kubernetes-list-map-keys"] = list(map_keys)
    else:
        schema["x-kubernetes-list-type"] = "atomic"
    if merge_key:
        schema["x-kubernetes-patch-merge-key"] = merge_key
    if strategy:
        schema["x-kubernetes-patch-strategy"] = strategy
    return schema


def _merge_list(items: str, description: str, key: str, *more_keys: str) -> Schema:
    return _array(items, description, merge_key=key, strategy="merge", map_keys=(key, *more_keys))


def _map(description: str, values: Schema | None = None) -> Schema:
    return {
        "type": "object",
        "additionalProperties": values if values is not None else {"type": "string"},
        "description": description,
    }


def _quantities(description: str) -> Schema:
    return _map(description, _ref(QUANTITY))


def _loose(description: str) -> Schema:
    return {
        "type": "object",
        "description": description,
        "x-kubernetes-preserve-unknown-fields": True,
    }


def _object(
    description: str,
    properties: dict[str, Schema],
    required: tuple[str, ...] = (),
    **extensions: Any,
) -> Schema:
    schema: Schema = {"type": "object", "description": description, "properties": properties}
    if required:
        schema["required"] = list(required)
    for key, value in extensions.items():
        schema["x-kubernetes-" + key.replace("_", "-")] = value
    return schema


_API_VERSION = _string(
    "The versioned schema of this object, e.g. v1 or apps/v1. Servers convert to it on read."
)
_KIND = _string("The kind of object this is, in CamelCase, e.g. Pod. Cannot be updated.")
_METADATA = _ref(META + "ObjectMeta", "Standard object metadata: name, namespace, labels...")
_LIST_METADATA = _ref(META + "ListMeta", "Standard list metadata, with the list's version.")


def _kind(description: str, properties: dict[str, Schema], *required: str) -> Schema:
    """A top-level kind: apiVersion, kind and metadata come first, then its own fields."""
    props = {"apiVersion": _API_VERSION, "kind": _KIND, "metadata": _METADATA}
    props.update(properties)
    return _object(description, props, required)


_CONDITION_TIMES = {
    "lastProbeTime": "When the condition was last probed.",
    "lastHeartbeatTime": "When the condition was last reported by its owner.",
    "lastUpdateTime": "When the condition was last updated.",
}


def _condition(description: str, *extra_times: str) -> Schema:
    props: dict[str, Schema] = {
        "type": _string("Type of the condition, e.g. Ready or Available."),
        "status": _string("Status of the condition.", enum=["True", "False", "Unknown"]),
    }
    for field_name in extra_times:
        props[field_name] = _ref(TIME, _CONDITION_TIMES[field_name])
    props["lastTransitionTime"] = _ref(TIME, "When the status last changed from one value to "
                                             "another.")
    props["reason"] = _string("One-word CamelCase reason for the last transition.")
    props["message"] = _string("Human-readable details about the last transition.")
    return _object(description, props, ("type", "status"))


# ---------------------------------------------------------------------------------------------
# the schema table (written once; v2 and v3 are derived from it)


def _meta_schemas() -> dict[str, Schema]:
    return {
        META + "ObjectMeta": _object(
            "Metadata every persisted object has: identity, labels, annotations, ownership and "
            "lifecycle fields set by the system.",
            {
                "name": _string("Name of the object, unique within its namespace and kind. "
                                "Cannot be updated."),
                "generateName": _string("Prefix the server uses to make a unique name when "
                                        "name is empty."),
                "namespace": _string("Namespace the object lives in; empty for cluster-scoped "
                                     "objects. Cannot be updated."),
                "uid": _string("Unique id the server gives the object at creation; never "
                               "reused. Read-only."),
                "resourceVersion": _string("Opaque version of the object, used for optimistic "
                                           "concurrency and watches. Read-only."),
                "generation": _int64("Number that increases when the desired state (spec) "
                                     "changes. Read-only."),
                "creationTimestamp": _ref(TIME, "When the object was created. Read-only."),
                "deletionTimestamp": _ref(TIME, "When the object will be (or began being) "
                                                "deleted; set by a graceful delete. "
                                                "Read-only."),
                "deletionGracePeriodSeconds": _int64("Seconds the object is allowed to take to "
                                                     "terminate gracefully. Read-only."),
                "labels": _map("Key/value pairs used to select and organise objects."),
                "annotations": _map("Arbitrary non-identifying key/value data for tools and "
                                    "people."),
                "ownerReferences": _merge_list(
                    META + "OwnerReference",
                    "Objects this one depends on; garbage collection deletes it when all its "
                    "owners are gone.",
                    "uid",
                ),
                "finalizers": {
                    **_strings("Names of actions that must run before the object is removed "
                               "from storage.", list_type="set"),
                    "x-kubernetes-patch-strategy": "merge",
                },
                "managedFields": _array(META + "ManagedFieldsEntry",
                                        "Which manager owns which fields (server-side apply). "
                                        "Internal; usually not edited by hand."),
                "selfLink": _string("Deprecated and always empty."),
            },
        ),
        META + "ListMeta": _object(
            "Metadata of a list response.",
            {
                "resourceVersion": _string("The storage version the list was read at; start a "
                                           "watch from it to see every later change."),
                "continue": _string("Token for the next page when the list was limited."),
                "remainingItemCount": _int64("Number of items after this page, when known."),
                "selfLink": _string("Deprecated and always empty."),
            },
        ),
        META + "LabelSelector": _object(
            "A label query. The results of matchLabels and matchExpressions are ANDed; an empty "
            "selector matches everything, a null one matches nothing.",
            {
                "matchLabels": _map("Labels that must all be present with these exact values."),
                "matchExpressions": _array(META + "LabelSelectorRequirement",
                                           "Set-based requirements, all of which must hold."),
            },
            map_type="atomic",
        ),
        META + "LabelSelectorRequirement": _object(
            "One set-based requirement: a key, an operator and values.",
            {
                "key": _string("The label key the requirement applies to."),
                "operator": _string("How the key relates to the values.",
                                    enum=["In", "NotIn", "Exists", "DoesNotExist"]),
                "values": _strings("Values for In and NotIn; must be empty for Exists and "
                                   "DoesNotExist."),
            },
            ("key", "operator"),
        ),
        META + "OwnerReference": _object(
            "Identifies an owning object in the same namespace (or a cluster-scoped one).",
            {
                "apiVersion": _string("API version of the owner."),
                "kind": _string("Kind of the owner."),
                "name": _string("Name of the owner."),
                "uid": _string("UID of the owner."),
                "controller": _bool("True if the owner is the managing controller; at most one "
                                    "owner may be."),
                "blockOwnerDeletion": _bool("If true, a foreground deletion of the owner waits "
                                            "for this object to be removed first."),
            },
            ("apiVersion", "kind", "name", "uid"),
            map_type="atomic",
        ),
        META + "ManagedFieldsEntry": _object(
            "The fields one manager owns, and how it last wrote them.",
            {
                "manager": _string("Name of the manager (the fieldManager of its requests)."),
                "operation": _string("Apply or Update."),
                "apiVersion": _string("API version the fields are described in."),
                "time": _ref(TIME, "When the manager last changed these fields."),
                "fieldsType": _string("Format of fieldsV1; always FieldsV1."),
                "fieldsV1": _ref(META + "FieldsV1", "The set of owned fields."),
                "subresource": _string("Subresource the request went to, empty for the main "
                                       "resource."),
            },
        ),
        META + "FieldsV1": _loose("A set of field paths, encoded as a JSON trie."),
        META + "Time": {
            "type": "string",
            "format": "date-time",
            "description": "A timestamp in RFC 3339 form, to the second.",
        },
        META + "MicroTime": {
            "type": "string",
            "format": "date-time",
            "description": "A timestamp in RFC 3339 form, to the microsecond.",
        },
        META + "Status": _object(
            "The result of an operation that returns no object, most often an error.",
            {
                "apiVersion": _API_VERSION,
                "kind": _KIND,
                "metadata": _LIST_METADATA,
                "status": _string("Success or Failure."),
                "message": _string("Human-readable description of what happened."),
                "reason": _string("Machine-readable reason, e.g. NotFound or Conflict."),
                "details": _ref(META + "StatusDetails", "More about the reason, if any."),
                "code": _int32("HTTP status code of the response."),
            },
        ),
        META + "StatusDetails": _object(
            "Details attached to a Status.",
            {
                "name": _string("Name of the object the status is about."),
                "group": _string("API group of that object."),
                "kind": _string("Kind of that object."),
                "uid": _string("UID of that object."),
                "causes": _array(META + "StatusCause", "Individual causes, e.g. one per "
                                                       "invalid field."),
                "retryAfterSeconds": _int32("Seconds a client should wait before retrying."),
            },
        ),
        META + "StatusCause": _object(
            "One cause of an error.",
            {
                "reason": _string("Machine-readable cause, e.g. FieldValueInvalid."),
                "message": _string("Human-readable description of the cause."),
                "field": _string("Path of the field at fault, e.g. spec.containers[0].name."),
            },
        ),
        META + "DeleteOptions": _object(
            "Options for a DELETE request.",
            {
                "apiVersion": _API_VERSION,
                "kind": _KIND,
                "gracePeriodSeconds": _int64("Seconds to wait before deleting; 0 deletes "
                                             "immediately."),
                "preconditions": _ref(META + "Preconditions", "Conditions that must hold or "
                                                              "the delete fails with 409."),
                "orphanDependents": _bool("Deprecated: use propagationPolicy."),
                "propagationPolicy": _string("What happens to dependents.",
                                             enum=["Orphan", "Background", "Foreground"]),
                "dryRun": _strings("If All, run every stage but do not persist."),
            },
        ),
        META + "Preconditions": _object(
            "Must be true for a delete to proceed.",
            {
                "uid": _string("The object's UID must be this."),
                "resourceVersion": _string("The object's resourceVersion must be this."),
            },
        ),
        META + "Patch": {
            "type": "object",
            "description": "A patch document: JSON Patch, JSON merge patch, strategic merge "
                           "patch or an apply configuration, as the Content-Type says.",
        },
        META + "Condition": _object(
            "A generic status condition.",
            {
                "type": _string("Type of the condition."),
                "status": _string("Status of the condition.", enum=["True", "False", "Unknown"]),
                "observedGeneration": _int64("The metadata.generation the condition was set "
                                             "from."),
                "lastTransitionTime": _ref(TIME, "When the status last changed."),
                "reason": _string("One-word CamelCase reason."),
                "message": _string("Human-readable details."),
            },
            ("type", "status", "lastTransitionTime", "reason", "message"),
        ),
        QUANTITY: {
            "type": "string",
            "description": "A fixed-point number with an optional SI (k, M, G) or binary "
                           "(Ki, Mi, Gi) suffix, or m for thousandths, e.g. 500m, 1.5, 128Mi. "
                           "Written as a string or a number.",
            # v3 says what the value may really be; Swagger 2.0 has no oneOf.
            "_v3": {"oneOf": [{"type": "string"}, {"type": "number"}], "type": None},
        },
        INT_OR_STRING: {
            "type": "string",
            "format": "int-or-string",
            "description": "Either an integer or a string, e.g. a port number or a port name, "
                           "or a count or a percentage such as 25%.",
            "_v3": {"oneOf": [{"type": "integer"}, {"type": "string"}], "type": None},
        },
    }


def _container_schemas() -> dict[str, Schema]:
    container_fields: dict[str, Schema] = {
        "name": _string("Name of the container, a DNS label unique within the pod. Cannot be "
                        "updated."),
        "image": _string("Container image to run, e.g. nginx:1.27."),
        "command": _strings("Entrypoint array; replaces the image's ENTRYPOINT. $(VAR) refers "
                            "to environment variables. Not run in a shell."),
        "args": _strings("Arguments to the entrypoint; replace the image's CMD. $(VAR) refers "
                         "to environment variables."),
        "workingDir": _string("Working directory; defaults to the image's."),
        "ports": _merge_list(CORE + "ContainerPort",
                             "Ports the container exposes. Informational: any port the process "
                             "listens on is reachable.", "containerPort", "protocol"),
        "envFrom": _array(CORE + "EnvFromSource",
                          "Sources (ConfigMaps, Secrets) whose keys all become environment "
                          "variables. env entries win on conflicts."),
        "env": _merge_list(CORE + "EnvVar", "Environment variables to set.", "name"),
        "resources": _ref(CORE + "ResourceRequirements", "Compute resources the container "
                                                         "requests and is limited to."),
        "resizePolicy": _array(CORE + "ContainerResizePolicy",
                               "How each resource may be resized in place."),
        "restartPolicy": _string("Only for init containers: Always makes it a sidecar that "
                                 "keeps running beside the regular containers."),
        "volumeMounts": _merge_list(CORE + "VolumeMount", "Pod volumes to mount into the "
                                                          "container's filesystem.",
                                    "mountPath"),
        "volumeDevices": _merge_list(CORE + "VolumeDevice", "Block devices the container "
                                                            "uses.", "devicePath"),
        "livenessProbe": _ref(CORE + "Probe", "Restarts the container when it fails."),
        "readinessProbe": _ref(CORE + "Probe", "Removes the pod from service endpoints while "
                                               "it fails."),
        "startupProbe": _ref(CORE + "Probe", "Holds off the other probes until it succeeds."),
        "lifecycle": _ref(CORE + "Lifecycle", "Hooks run after start and before stop."),
        "terminationMessagePath": _string("File whose contents become the termination "
                                          "message; default /dev/termination-log."),
        "terminationMessagePolicy": _string("Where the termination message comes from.",
                                            enum=["File", "FallbackToLogsOnError"]),
        "imagePullPolicy": _string("When to pull the image. Defaults to Always for :latest, "
                                   "else IfNotPresent.",
                                   enum=["Always", "IfNotPresent", "Never"]),
        "securityContext": _ref(CORE + "SecurityContext", "Security options for this "
                                                          "container; override the pod's."),
        "stdin": _bool("Keep a stdin buffer open for the container."),
        "stdinOnce": _bool("Close stdin after the first attached client disconnects."),
        "tty": _bool("Allocate a TTY; needs stdin."),
    }
    return {
        CORE + "Container": _object("A single application container in a pod.",
                                    container_fields, ("name",)),
        CORE + "EphemeralContainer": _loose(
            "A temporary container added to a running pod for debugging (kubectl debug). Has "
            "the Container fields plus targetContainerName."),
        CORE + "ContainerPort": _object(
            "A network port of a single container.",
            {
                "name": _string("IANA service name for the port, unique in the pod; services "
                                "can refer to it."),
                "containerPort": _int32("Port number on the pod's IP, 1-65535."),
                "protocol": _string("Protocol of the port; default TCP.",
                                    enum=["TCP", "UDP", "SCTP"]),
                "hostPort": _int32("Port to also open on the node. Rarely needed."),
                "hostIP": _string("Node IP to bind hostPort to."),
            },
            ("containerPort",),
        ),
        CORE + "EnvVar": _object(
            "An environment variable: a literal value or a reference.",
            {
                "name": _string("Name of the variable."),
                "value": _string("Literal value; $(VAR) expands earlier variables."),
                "valueFrom": _ref(CORE + "EnvVarSource", "Where to read the value from; "
                                                         "not with value."),
            },
            ("name",),
        ),
        CORE + "EnvVarSource": _object(
            "Source of an environment variable's value.",
            {
                "fieldRef": _ref(CORE + "ObjectFieldSelector", "A field of the pod, e.g. "
                                                               "metadata.name or status.podIP."),
                "resourceFieldRef": _ref(CORE + "ResourceFieldSelector",
                                         "A resource limit or request of a container."),
                "configMapKeyRef": _ref(CORE + "ConfigMapKeySelector", "A key of a ConfigMap."),
                "secretKeyRef": _ref(CORE + "SecretKeySelector", "A key of a Secret."),
            },
        ),
        CORE + "ObjectFieldSelector": _object(
            "Selects a field of the pod.",
            {
                "apiVersion": _string("Version the fieldPath is written in; default v1."),
                "fieldPath": _string("Path of the field, e.g. metadata.namespace."),
            },
            ("fieldPath",),
            map_type="atomic",
        ),
        CORE + "ResourceFieldSelector": _object(
            "Selects a container resource (limits.cpu, requests.memory, ...).",
            {
                "containerName": _string("Container to read; required for volumes."),
                "resource": _string("The resource, e.g. limits.memory."),
                "divisor": _ref(QUANTITY, "Unit the value is divided by; default 1."),
            },
            ("resource",),
            map_type="atomic",
        ),
        CORE + "ConfigMapKeySelector": _object(
            "Selects one key of a ConfigMap.",
            {
                "name": _string("Name of the ConfigMap in the pod's namespace."),
                "key": _string("The key to read."),
                "optional": _bool("Tolerate a missing ConfigMap or key."),
            },
            ("key",),
            map_type="atomic",
        ),
        CORE + "SecretKeySelector": _object(
            "Selects one key of a Secret.",
            {
                "name": _string("Name of the Secret in the pod's namespace."),
                "key": _string("The key to read."),
                "optional": _bool("Tolerate a missing Secret or key."),
            },
            ("key",),
            map_type="atomic",
        ),
        CORE + "EnvFromSource": _object(
            "A set of environment variables taken from a ConfigMap or a Secret.",
            {
                "prefix": _string("Prefix added to each key."),
                "configMapRef": _ref(CORE + "ConfigMapEnvSource", "The ConfigMap."),
                "secretRef": _ref(CORE + "SecretEnvSource", "The Secret."),
            },
        ),
        CORE + "ConfigMapEnvSource": _object(
            "Refers to a ConfigMap whose keys become environment variables.",
            {"name": _string("Name of the ConfigMap."),
             "optional": _bool("Tolerate a missing ConfigMap.")},
        ),
        CORE + "SecretEnvSource": _object(
            "Refers to a Secret whose keys become environment variables.",
            {"name": _string("Name of the Secret."),
             "optional": _bool("Tolerate a missing Secret.")},
        ),
        CORE + "VolumeMount": _object(
            "Mounts a pod volume into a container.",
            {
                "name": _string("Name of the pod volume."),
                "mountPath": _string("Path in the container to mount at; must not contain ':'."),
                "readOnly": _bool("Mount read-only."),
                "subPath": _string("Path inside the volume to mount instead of its root."),
                "subPathExpr": _string("Like subPath, with $(VAR) expansion."),
                "mountPropagation": _string("How mounts propagate between host and container.",
                                            enum=["None", "HostToContainer", "Bidirectional"]),
                "recursiveReadOnly": _string("Whether read-only applies recursively."),
            },
            ("name", "mountPath"),
        ),
        CORE + "VolumeDevice": _object(
            "Maps a raw block volume into a container.",
            {"name": _string("Name of the PVC-backed volume."),
             "devicePath": _string("Device path in the container.")},
            ("name", "devicePath"),
        ),
        CORE + "ResourceRequirements": _object(
            "Compute resources: what is requested (used for scheduling) and the hard limits.",
            {
                "limits": _quantities("Maximum amount of each resource, e.g. cpu: 500m, "
                                      "memory: 256Mi."),
                "requests": _quantities("Amount of each resource to reserve; defaults to the "
                                        "limits when only those are set."),
                "claims": _array(CORE + "ResourceClaim", "Dynamic resource claims used by the "
                                                         "container.",
                                 map_keys=("name",)),
            },
        ),
        CORE + "ResourceClaim": _object(
            "Names one entry of the pod's resourceClaims.",
            {"name": _string("Name of the pod resource claim."),
             "request": _string("A single request inside the claim, if any.")},
            ("name",),
        ),
        CORE + "ContainerResizePolicy": _object(
            "How one resource of a container is resized.",
            {"resourceName": _string("cpu or memory."),
             "restartPolicy": _string("Whether a resize restarts the container.",
                                      enum=["NotRequired", "RestartContainer"])},
            ("resourceName", "restartPolicy"),
        ),
        CORE + "Probe": _object(
            "A health check the kubelet runs against a container.",
            {
                "exec": _ref(CORE + "ExecAction", "Run a command; exit 0 is healthy."),
                "httpGet": _ref(CORE + "HTTPGetAction", "HTTP GET; 200-399 is healthy."),
                "tcpSocket": _ref(CORE + "TCPSocketAction", "TCP connect; open is healthy."),
                "grpc": _ref(CORE + "GRPCAction", "gRPC health check."),
                "initialDelaySeconds": _int32("Seconds after start before the first probe."),
                "timeoutSeconds": _int32("Seconds before a probe times out; default 1."),
                "periodSeconds": _int32("Seconds between probes; default 10."),
                "successThreshold": _int32("Consecutive successes to count as healthy; "
                                           "default 1."),
                "failureThreshold": _int32("Consecutive failures to count as unhealthy; "
                                           "default 3."),
                "terminationGracePeriodSeconds": _int64("Grace period when a liveness failure "
                                                        "kills the container."),
            },
        ),
        CORE + "ExecAction": _object(
            "Runs a command in the container.",
            {"command": _strings("Command and arguments; run directly, not in a shell.")},
        ),
        CORE + "HTTPGetAction": _object(
            "An HTTP GET request.",
            {
                "path": _string("Path to request."),
                "port": _ref(INT_OR_STRING, "Port number or name on the container."),
                "host": _string("Host to connect to; defaults to the pod IP."),
                "scheme": _string("Scheme to use; default HTTP.", enum=["HTTP", "HTTPS"]),
                "httpHeaders": _array(CORE + "HTTPHeader", "Extra request headers."),
            },
            ("port",),
        ),
        CORE + "HTTPHeader": _object(
            "One HTTP header.",
            {"name": _string("Header name."), "value": _string("Header value.")},
            ("name", "value"),
        ),
        CORE + "TCPSocketAction": _object(
            "Opens a TCP connection.",
            {"port": _ref(INT_OR_STRING, "Port number or name on the container."),
             "host": _string("Host to connect to; defaults to the pod IP.")},
            ("port",),
        ),
        CORE + "GRPCAction": _object(
            "A gRPC health check (grpc.health.v1).",
            {"port": _int32("Port number of the gRPC service."),
             "service": _string("Service name sent in the health request.")},
            ("port",),
        ),
        CORE + "Lifecycle": _object(
            "Actions the kubelet runs at container lifecycle events.",
            {
                "postStart": _ref(CORE + "LifecycleHandler", "Runs right after the container "
                                                             "starts."),
                "preStop": _ref(CORE + "LifecycleHandler", "Runs before the container is "
                                                           "stopped."),
            },
        ),
        CORE + "LifecycleHandler": _object(
            "One lifecycle action; set exactly one field.",
            {
                "exec": _ref(CORE + "ExecAction", "Run a command."),
                "httpGet": _ref(CORE + "HTTPGetAction", "Send an HTTP GET."),
                "tcpSocket": _ref(CORE + "TCPSocketAction", "Deprecated: open a TCP "
                                                            "connection."),
                "sleep": _ref(CORE + "SleepAction", "Sleep for a while."),
            },
        ),
        CORE + "SleepAction": _object(
            "Sleeps for a number of seconds.",
            {"seconds": _int64("Seconds to sleep.")},
            ("seconds",),
        ),
        CORE + "SecurityContext": _object(
            "Security options for one container.",
            {
                "capabilities": _ref(CORE + "Capabilities", "Linux capabilities to add or "
                                                            "drop."),
                "privileged": _bool("Run as privileged: like root on the host."),
                "seLinuxOptions": _ref(CORE + "SELinuxOptions", "SELinux context."),
                "windowsOptions": _loose("Windows-specific settings."),
                "runAsUser": _int64("UID to run the entrypoint as."),
                "runAsGroup": _int64("GID to run the entrypoint as."),
                "runAsNonRoot": _bool("Refuse to start if the process would run as UID 0."),
                "readOnlyRootFilesystem": _bool("Mount the root filesystem read-only."),
                "allowPrivilegeEscalation": _bool("Whether a process may gain more privileges "
                                                  "than its parent."),
                "procMount": _string("Default or Unmasked /proc."),
                "seccompProfile": _ref(CORE + "SeccompProfile", "Seccomp filter to apply."),
                "appArmorProfile": _ref(CORE + "AppArmorProfile", "AppArmor profile to apply."),
            },
        ),
        CORE + "PodSecurityContext": _object(
            "Security options for every container of a pod.",
            {
                "seLinuxOptions": _ref(CORE + "SELinuxOptions", "SELinux context."),
                "windowsOptions": _loose("Windows-specific settings."),
                "runAsUser": _int64("UID to run container processes as."),
                "runAsGroup": _int64("GID to run container processes as."),
                "runAsNonRoot": _bool("Refuse to start containers that would run as UID 0."),
                "supplementalGroups": {
                    "type": "array",
                    "items": {"type": "integer", "format": "int64"},
                    "description": "Extra GIDs added to every container's first process.",
                    "x-kubernetes-list-type": "atomic",
                },
                "supplementalGroupsPolicy": _string("How supplemental groups are computed."),
                "fsGroup": _int64("GID that owns supported volumes."),
                "fsGroupChangePolicy": _string("When volume ownership is changed.",
                                               enum=["OnRootMismatch", "Always"]),
                "sysctls": _array(CORE + "Sysctl", "Namespaced sysctls to set."),
                "seccompProfile": _ref(CORE + "SeccompProfile", "Seccomp filter to apply."),
                "appArmorProfile": _ref(CORE + "AppArmorProfile", "AppArmor profile to apply."),
                "seLinuxChangePolicy": _string("How SELinux labels are applied to volumes."),
            },
        ),
        CORE + "Capabilities": _object(
            "Linux capabilities.",
            {"add": _strings("Capabilities to add, e.g. NET_ADMIN."),
             "drop": _strings("Capabilities to drop, e.g. ALL.")},
        ),
        CORE + "SELinuxOptions": _object(
            "SELinux labels.",
            {"user": _string("SELinux user."), "role": _string("SELinux role."),
             "type": _string("SELinux type."), "level": _string("SELinux level.")},
        ),
        CORE + "SeccompProfile": _object(
            "A seccomp profile.",
            {"type": _string("Kind of profile.", enum=["Localhost", "RuntimeDefault",
                                                       "Unconfined"]),
             "localhostProfile": _string("Profile file on the node, for Localhost.")},
            ("type",),
        ),
        CORE + "AppArmorProfile": _object(
            "An AppArmor profile.",
            {"type": _string("Kind of profile.", enum=["Localhost", "RuntimeDefault",
                                                       "Unconfined"]),
             "localhostProfile": _string("Profile loaded on the node, for Localhost.")},
            ("type",),
        ),
        CORE + "Sysctl": _object(
            "A kernel parameter.",
            {"name": _string("Name of the sysctl."), "value": _string("Value to set.")},
            ("name", "value"),
        ),
    }


def _volume_schemas() -> dict[str, Schema]:
    key_to_path = _array(CORE + "KeyToPath", "Project only these keys, at these paths; all "
                                             "keys when empty.")
    return {
        CORE + "Volume": _object(
            "A named volume in a pod that containers can mount. Set exactly one source.",
            {
                "name": _string("Name of the volume, a DNS label unique within the pod."),
                "emptyDir": _ref(CORE + "EmptyDirVolumeSource", "A scratch directory that "
                                                                "lives as long as the pod."),
                "hostPath": _ref(CORE + "HostPathVolumeSource", "A file or directory of the "
                                                                "node."),
                "configMap": _ref(CORE + "ConfigMapVolumeSource", "Keys of a ConfigMap as "
                                                                  "files."),
                "secret": _ref(CORE + "SecretVolumeSource", "Keys of a Secret as files."),
                "persistentVolumeClaim": _ref(CORE + "PersistentVolumeClaimVolumeSource",
                                              "A PersistentVolumeClaim in the same namespace."),
                "projected": _ref(CORE + "ProjectedVolumeSource", "Several sources in one "
                                                                  "directory."),
                "downwardAPI": _ref(CORE + "DownwardAPIVolumeSource", "Pod fields as files."),
                "nfs": _ref(CORE + "NFSVolumeSource", "An NFS export."),
                "csi": _loose("A volume provided by a CSI driver."),
                "ephemeral": _loose("A volume from a per-pod PersistentVolumeClaim template."),
                "image": _loose("The contents of an OCI image or artifact."),
            },
            ("name",),
        ),
        CORE + "EmptyDirVolumeSource": _object(
            "An empty directory for the pod's lifetime.",
            {"medium": _string("Storage medium: empty for the node's disk, Memory for tmpfs."),
             "sizeLimit": _ref(QUANTITY, "Most storage the directory may use.")},
        ),
        CORE + "HostPathVolumeSource": _object(
            "A path on the node.",
            {"path": _string("Path on the node; symlinks are followed."),
             "type": _string("What must exist at the path, e.g. Directory or "
                             "DirectoryOrCreate.")},
            ("path",),
        ),
        CORE + "ConfigMapVolumeSource": _object(
            "Projects a ConfigMap's keys as files.",
            {"name": _string("Name of the ConfigMap."), "items": key_to_path,
             "defaultMode": _int32("File mode bits for the files, e.g. 0644 (420)."),
             "optional": _bool("Tolerate a missing ConfigMap or keys.")},
        ),
        CORE + "SecretVolumeSource": _object(
            "Projects a Secret's keys as files.",
            {"secretName": _string("Name of the Secret."), "items": key_to_path,
             "defaultMode": _int32("File mode bits for the files, e.g. 0644 (420)."),
             "optional": _bool("Tolerate a missing Secret or keys.")},
        ),
        CORE + "KeyToPath": _object(
            "Maps one key to a relative file path.",
            {"key": _string("The key to project."),
             "path": _string("Relative path of the file; may not contain '..'."),
             "mode": _int32("File mode bits for this file.")},
            ("key", "path"),
        ),
        CORE + "PersistentVolumeClaimVolumeSource": _object(
            "Mounts the volume bound to a claim.",
            {"claimName": _string("Name of the PersistentVolumeClaim."),
             "readOnly": _bool("Mount read-only.")},
            ("claimName",),
        ),
        CORE + "ProjectedVolumeSource": _object(
            "Several volume sources projected into one directory.",
            {"sources": _array(CORE + "VolumeProjection", "The sources to project."),
             "defaultMode": _int32("File mode bits for the files.")},
        ),
        CORE + "VolumeProjection": _object(
            "One projected source; set exactly one field.",
            {
                "configMap": _ref(CORE + "ConfigMapProjection", "Keys of a ConfigMap."),
                "secret": _ref(CORE + "SecretProjection", "Keys of a Secret."),
                "downwardAPI": _ref(CORE + "DownwardAPIProjection", "Pod fields."),
                "serviceAccountToken": _ref(CORE + "ServiceAccountTokenProjection",
                                            "A bound service account token."),
                "clusterTrustBundle": _loose("Certificates from ClusterTrustBundle objects."),
            },
        ),
        CORE + "ConfigMapProjection": _object(
            "Keys of a ConfigMap in a projected volume.",
            {"name": _string("Name of the ConfigMap."), "items": key_to_path,
             "optional": _bool("Tolerate a missing ConfigMap or keys.")},
        ),
        CORE + "SecretProjection": _object(
            "Keys of a Secret in a projected volume.",
            {"name": _string("Name of the Secret."), "items": key_to_path,
             "optional": _bool("Tolerate a missing Secret or keys.")},
        ),
        CORE + "DownwardAPIProjection": _object(
            "Pod fields in a projected volume.",
            {"items": _array(CORE + "DownwardAPIVolumeFile", "The files to create.")},
        ),
        CORE + "DownwardAPIVolumeSource": _object(
            "Pod fields as files.",
            {"items": _array(CORE + "DownwardAPIVolumeFile", "The files to create."),
             "defaultMode": _int32("File mode bits for the files.")},
        ),
        CORE + "DownwardAPIVolumeFile": _object(
            "One file holding a pod field or a container resource.",
            {"path": _string("Relative path of the file."),
             "fieldRef": _ref(CORE + "ObjectFieldSelector", "A pod field."),
             "resourceFieldRef": _ref(CORE + "ResourceFieldSelector", "A container "
                                                                      "resource."),
             "mode": _int32("File mode bits for this file.")},
            ("path",),
        ),
        CORE + "ServiceAccountTokenProjection": _object(
            "A service account token bound to the pod.",
            {"audience": _string("Intended audience; defaults to the API server."),
             "expirationSeconds": _int64("Requested lifetime; default one hour."),
             "path": _string("Relative path of the token file.")},
            ("path",),
        ),
        CORE + "NFSVolumeSource": _object(
            "An NFS export.",
            {"server": _string("Host name or IP of the NFS server."),
             "path": _string("Path exported by the server."),
             "readOnly": _bool("Mount read-only.")},
            ("server", "path"),
        ),
    }


def _scheduling_schemas() -> dict[str, Schema]:
    return {
        CORE + "Toleration": _object(
            "Lets the pod schedule onto (or stay on) nodes with a matching taint.",
            {
                "key": _string("Taint key to match; empty with Exists matches every taint."),
                "operator": _string("How key and value are compared; default Equal.",
                                    enum=["Exists", "Equal"]),
                "value": _string("Taint value to match, for Equal."),
                "effect": _string("Taint effect to match; empty matches all effects.",
                                  enum=["NoSchedule", "PreferNoSchedule", "NoExecute"]),
                "tolerationSeconds": _int64("For NoExecute: how long the pod stays bound "
                                            "after the taint appears."),
            },
        ),
        CORE + "Affinity": _object(
            "Scheduling constraints relative to nodes and to other pods.",
            {
                "nodeAffinity": _ref(CORE + "NodeAffinity", "Which nodes the pod may or "
                                                            "prefers to run on."),
                "podAffinity": _ref(CORE + "PodAffinity", "Run near pods matching a "
                                                          "selector."),
                "podAntiAffinity": _ref(CORE + "PodAntiAffinity", "Run away from pods "
                                                                  "matching a selector."),
            },
        ),
        CORE + "NodeAffinity": _object(
            "Node affinity rules.",
            {
                "requiredDuringSchedulingIgnoredDuringExecution": _ref(
                    CORE + "NodeSelector", "Nodes must match for the pod to be scheduled."),
                "preferredDuringSchedulingIgnoredDuringExecution": _array(
                    CORE + "PreferredSchedulingTerm", "Weighted preferences between nodes."),
            },
        ),
        CORE + "NodeSelector": _object(
            "A node matches if any of the terms matches.",
            {"nodeSelectorTerms": _array(CORE + "NodeSelectorTerm", "The terms, ORed.")},
            ("nodeSelectorTerms",),
            map_type="atomic",
        ),
        CORE + "NodeSelectorTerm": _object(
            "Requirements on a node's labels and fields, ANDed.",
            {"matchExpressions": _array(CORE + "NodeSelectorRequirement",
                                        "Requirements on node labels."),
             "matchFields": _array(CORE + "NodeSelectorRequirement",
                                   "Requirements on node fields (metadata.name).")},
            map_type="atomic",
        ),
        CORE + "NodeSelectorRequirement": _object(
            "One requirement on a node label or field.",
            {"key": _string("Label key or field name."),
             "operator": _string("How the key relates to the values.",
                                 enum=["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]),
             "values": _strings("Values to compare with; one integer for Gt and Lt.")},
            ("key", "operator"),
        ),
        CORE + "PreferredSchedulingTerm": _object(
            "A weighted node preference.",
            {"weight": _int32("Weight, 1-100, added to nodes that match."),
             "preference": _ref(CORE + "NodeSelectorTerm", "The term to match.")},
            ("weight", "preference"),
        ),
        CORE + "PodAffinity": _object(
            "Co-location rules.",
            {
                "requiredDuringSchedulingIgnoredDuringExecution": _array(
                    CORE + "PodAffinityTerm", "Terms that must all hold."),
                "preferredDuringSchedulingIgnoredDuringExecution": _array(
                    CORE + "WeightedPodAffinityTerm", "Weighted preferences."),
            },
        ),
        CORE + "PodAntiAffinity": _object(
            "Spreading rules.",
            {
                "requiredDuringSchedulingIgnoredDuringExecution": _array(
                    CORE + "PodAffinityTerm", "Terms that must all hold."),
                "preferredDuringSchedulingIgnoredDuringExecution": _array(
                    CORE + "WeightedPodAffinityTerm", "Weighted preferences."),
            },
        ),
        CORE + "PodAffinityTerm": _object(
            "Pods matching the selector, in the namespaces, within one topology domain.",
            {
                "labelSelector": _ref(META + "LabelSelector", "Which pods count."),
                "namespaces": _strings("Namespaces to look in; default the pod's own."),
                "namespaceSelector": _ref(META + "LabelSelector", "Namespaces to look in, by "
                                                                  "label."),
                "topologyKey": _string("Node label that defines a domain, e.g. "
                                       "kubernetes.io/hostname."),
                "matchLabelKeys": _strings("Pod label keys whose values are added to the "
                                           "selector."),
                "mismatchLabelKeys": _strings("Pod label keys whose values must differ."),
            },
            ("topologyKey",),
        ),
        CORE + "WeightedPodAffinityTerm": _object(
            "A weighted pod (anti-)affinity preference.",
            {"weight": _int32("Weight, 1-100."),
             "podAffinityTerm": _ref(CORE + "PodAffinityTerm", "The term.")},
            ("weight", "podAffinityTerm"),
        ),
        CORE + "TopologySpreadConstraint": _object(
            "How evenly matching pods must spread across topology domains.",
            {
                "maxSkew": _int32("Largest allowed difference in matching pods between "
                                  "domains."),
                "topologyKey": _string("Node label that defines a domain."),
                "whenUnsatisfiable": _string("What to do when the constraint cannot be met.",
                                             enum=["DoNotSchedule", "ScheduleAnyway"]),
                "labelSelector": _ref(META + "LabelSelector", "Which pods are counted."),
                "minDomains": _int32("Minimum number of eligible domains."),
                "nodeAffinityPolicy": _string("Whether node affinity limits the domains.",
                                              enum=["Honor", "Ignore"]),
                "nodeTaintsPolicy": _string("Whether node taints limit the domains.",
                                            enum=["Honor", "Ignore"]),
                "matchLabelKeys": _strings("Pod label keys whose values join the selector."),
            },
            ("maxSkew", "topologyKey", "whenUnsatisfiable"),
        ),
        CORE + "HostAlias": _object(
            "An entry added to the pod's /etc/hosts.",
            {"ip": _string("IP address of the entry."),
             "hostnames": _strings("Host names for that IP.")},
            ("ip",),
        ),
        CORE + "PodDNSConfig": _object(
            "DNS settings merged into the pod's resolv.conf.",
            {"nameservers": _strings("Extra name server IPs."),
             "searches": _strings("Extra search domains."),
             "options": _array(CORE + "PodDNSConfigOption", "Resolver options.")},
        ),
        CORE + "PodDNSConfigOption": _object(
            "One resolver option.",
            {"name": _string("Option name, e.g. ndots."), "value": _string("Option value.")},
        ),
        CORE + "PodReadinessGate": _object(
            "An extra condition that must be True for the pod to be ready.",
            {"conditionType": _string("Type of a pod condition.")},
            ("conditionType",),
        ),
        CORE + "PodOS": _object(
            "The operating system the pod needs.",
            {"name": _string("linux or windows.")},
            ("name",),
        ),
        CORE + "PodSchedulingGate": _object(
            "While any gate remains, the pod is not scheduled.",
            {"name": _string("Name of the gate.")},
            ("name",),
        ),
        CORE + "LocalObjectReference": _object(
            "Names an object in the same namespace.",
            {"name": _string("Name of the object.")},
            map_type="atomic",
        ),
        CORE + "ObjectReference": _object(
            "A reference to any object, possibly to a field inside it.",
            {
                "kind": _string("Kind of the object."),
                "namespace": _string("Namespace of the object."),
                "name": _string("Name of the object."),
                "uid": _string("UID of the object."),
                "apiVersion": _string("API version of the object."),
                "resourceVersion": _string("Version of the object that was referred to."),
                "fieldPath": _string("A field inside the object, e.g. "
                                     "spec.containers{web}."),
            },
            map_type="atomic",
        ),
    }


def _pod_schemas() -> dict[str, Schema]:
    return {
        CORE + "Pod": _kind(
            "A Pod is a group of containers that share a network namespace and volumes and "
            "are scheduled together onto one node.",
            {
                "spec": _ref(CORE + "PodSpec", "The desired behaviour of the pod."),
                "status": _ref(CORE + "PodStatus", "The most recently observed status of the "
                                                   "pod. Read-only; set by the kubelet."),
            },
        ),
        CORE + "PodSpec": _object(
            "The desired state of a pod: its containers, volumes and scheduling constraints.",
            {
                "volumes": _array(CORE + "Volume", "Volumes the containers can mount.",
                                  merge_key="name", strategy="merge,retainKeys",
                                  map_keys=("name",)),
                "initContainers": _merge_list(CORE + "Container",
                                              "Containers run one after another, each to "
                                              "completion, before the regular ones start.",
                                              "name"),
                "containers": _merge_list(CORE + "Container", "The pod's containers. At least "
                                                              "one. Cannot be added or "
                                                              "removed later.", "name"),
                "ephemeralContainers": _merge_list(CORE + "EphemeralContainer",
                                                   "Debugging containers added at run time.",
                                                   "name"),
                "restartPolicy": _string("Restart policy for the containers; default Always.",
                                         enum=["Always", "OnFailure", "Never"]),
                "terminationGracePeriodSeconds": _int64("Seconds between SIGTERM and SIGKILL "
                                                        "on deletion; default 30."),
                "activeDeadlineSeconds": _int64("Seconds the pod may be active before it is "
                                                "failed."),
                "dnsPolicy": _string("How the pod's DNS is set up; default ClusterFirst.",
                                     enum=["ClusterFirst", "ClusterFirstWithHostNet",
                                           "Default", "None"]),
                "nodeSelector": {
                    **_map("Node labels the node must have for the pod to fit."),
                    "x-kubernetes-map-type": "atomic",
                },
                "serviceAccountName": _string("ServiceAccount the pod runs as; default "
                                              "default."),
                "serviceAccount": _string("Deprecated alias of serviceAccountName."),
                "automountServiceAccountToken": _bool("Mount the service account token into "
                                                      "the containers."),
                "nodeName": _string("The node the pod runs on. Set by the scheduler through "
                                    "the binding subresource, or by hand to skip "
                                    "scheduling."),
                "hostNetwork": _bool("Use the node's network namespace."),
                "hostPID": _bool("Use the node's PID namespace."),
                "hostIPC": _bool("Use the node's IPC namespace."),
                "shareProcessNamespace": _bool("Share one PID namespace between the "
                                               "containers."),
                "securityContext": _ref(CORE + "PodSecurityContext", "Pod-level security "
                                                                     "options."),
                "imagePullSecrets": _merge_list(CORE + "LocalObjectReference",
                                                "Secrets with registry credentials for "
                                                "pulling images.", "name"),
                "hostname": _string("Host name of the pod; default the pod name."),
                "subdomain": _string("Gives the pod the FQDN "
                                     "<hostname>.<subdomain>.<ns>.svc.<cluster-domain>."),
                "affinity": _ref(CORE + "Affinity", "Scheduling constraints."),
                "schedulerName": _string("Scheduler that places the pod; default "
                                         "default-scheduler."),
                "tolerations": _array(CORE + "Toleration", "Taints the pod tolerates."),
                "hostAliases": _merge_list(CORE + "HostAlias", "Extra /etc/hosts entries.",
                                           "ip"),
                "priorityClassName": _string("Name of the pod's PriorityClass."),
                "priority": _int32("Priority value, filled in from priorityClassName."),
                "dnsConfig": _ref(CORE + "PodDNSConfig", "Extra DNS settings."),
                "readinessGates": _array(CORE + "PodReadinessGate", "Extra conditions for "
                                                                    "readiness."),
                "runtimeClassName": _string("RuntimeClass to run the pod with."),
                "enableServiceLinks": _bool("Inject environment variables for services; "
                                            "default true."),
                "preemptionPolicy": _string("Whether the pod may preempt lower-priority "
                                            "pods.", enum=["PreemptLowerPriority", "Never"]),
                "overhead": _quantities("Resources the pod's sandbox uses on top of its "
                                        "containers."),
                "topologySpreadConstraints": _merge_list(
                    CORE + "TopologySpreadConstraint",
                    "How the pod's replicas spread across zones, nodes, etc.",
                    "topologyKey", "whenUnsatisfiable"),
                "setHostnameAsFQDN": _bool("Make the kernel host name the pod's FQDN."),
                "os": _ref(CORE + "PodOS", "The operating system the pod needs."),
                "hostUsers": _bool("Use the host user namespace; default true."),
                "schedulingGates": _merge_list(CORE + "PodSchedulingGate",
                                               "Gates that hold the pod back from "
                                               "scheduling.", "name"),
                "resourceClaims": _array(_loose("A claim on a dynamically allocated resource."),
                                         "Dynamic resource claims the pod uses.",
                                         merge_key="name", strategy="merge,retainKeys",
                                         map_keys=("name",)),
                "resources": _ref(CORE + "ResourceRequirements", "Pod-level resource "
                                                                 "requests and limits."),
            },
            ("containers",),
        ),
        CORE + "PodTemplateSpec": _object(
            "The pods a controller creates: their metadata and spec.",
            {
                "metadata": _METADATA,
                "spec": _ref(CORE + "PodSpec", "The pods' desired behaviour."),
            },
        ),
        CORE + "PodStatus": _object(
            "The observed state of a pod. Set by the kubelet and the scheduler.",
            {
                "phase": _string("Where the pod is in its life.",
                                 enum=["Pending", "Running", "Succeeded", "Failed",
                                       "Unknown"]),
                "conditions": _merge_list(CORE + "PodCondition", "Current service state of "
                                                                 "the pod.", "type"),
                "message": _string("Why the pod is in its condition."),
                "reason": _string("Short CamelCase reason, e.g. Evicted."),
                "nominatedNodeName": _string("Node where preemption made room for the pod."),
                "hostIP": _string("IP of the node the pod is on."),
                "hostIPs": _merge_list(CORE + "HostIP", "IPs of the node the pod is on.",
                                       "ip"),
                "podIP": _string("The pod's primary IP address."),
                "podIPs": _merge_list(CORE + "PodIP", "The pod's IP addresses; the first is "
                                                      "podIP.", "ip"),
                "startTime": _ref(TIME, "When the kubelet acknowledged the pod."),
                "initContainerStatuses": _array(CORE + "ContainerStatus", "Status of each "
                                                                          "init container."),
                "containerStatuses": _array(CORE + "ContainerStatus", "Status of each "
                                                                      "container."),
                "ephemeralContainerStatuses": _array(CORE + "ContainerStatus",
                                                     "Status of each ephemeral container."),
                "qosClass": _string("Quality of service class from the resource settings.",
                                    enum=["BestEffort", "Burstable", "Guaranteed"]),
                "resize": _string("State of an in-place resize."),
            },
        ),
        CORE + "PodCondition": _condition("One aspect of a pod's state, e.g. Ready or "
                                          "PodScheduled.", "lastProbeTime"),
        CORE + "PodIP": _object("One IP address of the pod.",
                                {"ip": _string("The IP address.")}, ("ip",)),
        CORE + "HostIP": _object("One IP address of the pod's node.",
                                 {"ip": _string("The IP address.")}, ("ip",)),
        CORE + "ContainerStatus": _object(
            "The state of one container in a pod.",
            {
                "name": _string("Name of the container."),
                "state": _ref(CORE + "ContainerState", "Current state."),
                "lastState": _ref(CORE + "ContainerState", "Previous termination, if any."),
                "ready": _bool("Whether the readiness probe passes."),
                "restartCount": _int32("Times the container has been restarted."),
                "image": _string("Image the container runs."),
                "imageID": _string("Digest of the image."),
                "containerID": _string("Runtime id, as <type>://<id>."),
                "started": _bool("Whether the startup probe has passed."),
                "allocatedResources": _quantities("Resources allocated by the node."),
                "resources": _ref(CORE + "ResourceRequirements", "Resources actually "
                                                                 "applied."),
                "volumeMounts": _array(_loose("A mount as the runtime reports it."),
                                       "Volume mounts as the runtime reports them."),
            },
            ("name", "ready", "restartCount", "image", "imageID"),
        ),
        CORE + "ContainerState": _object(
            "One of waiting, running or terminated.",
            {
                "waiting": _ref(CORE + "ContainerStateWaiting", "Not running yet."),
                "running": _ref(CORE + "ContainerStateRunning", "Running."),
                "terminated": _ref(CORE + "ContainerStateTerminated", "Finished or failed."),
            },
        ),
        CORE + "ContainerStateWaiting": _object(
            "A container that is not running yet.",
            {"reason": _string("Why, e.g. ContainerCreating or CrashLoopBackOff."),
             "message": _string("Details.")},
        ),
        CORE + "ContainerStateRunning": _object(
            "A running container.",
            {"startedAt": _ref(TIME, "When it (last) started.")},
        ),
        CORE + "ContainerStateTerminated": _object(
            "A container that has finished.",
            {
                "exitCode": _int32("Exit code of the last run."),
                "signal": _int32("Signal that ended it, if any."),
                "reason": _string("Why, e.g. Completed, Error or OOMKilled."),
                "message": _string("Details."),
                "startedAt": _ref(TIME, "When the run started."),
                "finishedAt": _ref(TIME, "When the run ended."),
                "containerID": _string("Runtime id of the run."),
            },
            ("exitCode",),
        ),
        CORE + "Binding": _kind(
            "Binds a pod to a node; posted by the scheduler to pods/binding.",
            {"target": _ref(CORE + "ObjectReference", "The node to bind to.")},
            "target",
        ),
    }


def _core_schemas() -> dict[str, Schema]:
    return {
        CORE + "Namespace": _kind(
            "A Namespace is a scope for names; most objects live in one.",
            {"spec": _ref(CORE + "NamespaceSpec", "The namespace's finalizers."),
             "status": _ref(CORE + "NamespaceStatus", "Observed state.")},
        ),
        CORE + "NamespaceSpec": _object(
            "Desired state of a namespace.",
            {"finalizers": _strings("Must be empty before the namespace is removed.")},
        ),
        CORE + "NamespaceStatus": _object(
            "Observed state of a namespace.",
            {"phase": _string("Active, or Terminating while its contents are deleted.",
                              enum=["Active", "Terminating"]),
             "conditions": _merge_list(CORE + "NamespaceCondition", "Namespace conditions.",
                                       "type")},
        ),
        CORE + "NamespaceCondition": _condition("One aspect of a namespace's state."),
        CORE + "Node": _kind(
            "A Node is a worker machine that runs pods; its kubelet registers and updates it.",
            {"spec": _ref(CORE + "NodeSpec", "How the node is configured."),
             "status": _ref(CORE + "NodeStatus", "Observed state, reported by the kubelet.")},
        ),
        CORE + "NodeSpec": _object(
            "Desired state of a node.",
            {
                "podCIDR": _string("Pod IP range of the node."),
                "podCIDRs": {**_strings("Pod IP ranges of the node, one per family.",
                                        list_type="set"),
                             "x-kubernetes-patch-strategy": "merge"},
                "providerID": _string("Cloud provider id of the machine."),
                "unschedulable": _bool("Cordoned: no new pods are scheduled here."),
                "taints": _array(CORE + "Taint", "Taints that repel pods without a matching "
                                                 "toleration."),
            },
        ),
        CORE + "Taint": _object(
            "Repels pods that do not tolerate it.",
            {
                "key": _string("Taint key."),
                "value": _string("Taint value."),
                "effect": _string("What happens to pods that do not tolerate it.",
                                  enum=["NoSchedule", "PreferNoSchedule", "NoExecute"]),
                "timeAdded": _ref(TIME, "When a NoExecute taint was added."),
            },
            ("key", "effect"),
        ),
        CORE + "NodeStatus": _object(
            "Observed state of a node.",
            {
                "capacity": _quantities("Total resources of the node."),
                "allocatable": _quantities("Resources available to pods."),
                "phase": _string("Deprecated."),
                "conditions": _merge_list(CORE + "NodeCondition", "Node conditions such as "
                                                                  "Ready.", "type"),
                "addresses": _merge_list(CORE + "NodeAddress", "Addresses of the node.",
                                         "type"),
                "daemonEndpoints": _ref(CORE + "NodeDaemonEndpoints", "Ports of the node's "
                                                                      "daemons."),
                "nodeInfo": _ref(CORE + "NodeSystemInfo", "Versions and ids of the node."),
                "images": _array(CORE + "ContainerImage", "Images present on the node."),
                "volumesInUse": _strings("Attachable volumes in use."),
            },
        ),
        CORE + "NodeCondition": _condition("One aspect of a node's state, e.g. Ready or "
                                           "MemoryPressure.", "lastHeartbeatTime"),
        CORE + "NodeAddress": _object(
            "One address of a node.",
            {"type": _string("Hostname, InternalIP, ExternalIP, InternalDNS or ExternalDNS."),
             "address": _string("The address.")},
            ("type", "address"),
        ),
        CORE + "NodeDaemonEndpoints": _object(
            "Ports of daemons on the node.",
            {"kubeletEndpoint": _ref(CORE + "DaemonEndpoint", "The kubelet's port.")},
        ),
        CORE + "DaemonEndpoint": _object(
            "A daemon's port.",
            {"Port": _int32("Port number.")},
            ("Port",),
        ),
        CORE + "NodeSystemInfo": _object(
            "Facts about the node's machine and software.",
            {
                "machineID": _string("Machine id."),
                "systemUUID": _string("System UUID."),
                "bootID": _string("Boot id."),
                "kernelVersion": _string("Kernel version (uname -r)."),
                "osImage": _string("OS image, e.g. Debian GNU/Linux 12."),
                "containerRuntimeVersion": _string("Runtime and version, e.g. docker://27.0."),
                "kubeletVersion": _string("Kubelet version."),
                "kubeProxyVersion": _string("Deprecated: kube-proxy version."),
                "operatingSystem": _string("linux or windows."),
                "architecture": _string("CPU architecture, e.g. amd64."),
            },
            ("machineID", "systemUUID", "bootID", "kernelVersion", "osImage",
             "containerRuntimeVersion", "kubeletVersion", "kubeProxyVersion",
             "operatingSystem", "architecture"),
        ),
        CORE + "ContainerImage": _object(
            "An image present on a node.",
            {"names": _strings("Names (tags, digests) of the image."),
             "sizeBytes": _int64("Size in bytes.")},
        ),
        CORE + "Service": _kind(
            "A Service gives a stable virtual IP and DNS name to a set of pods chosen by a "
            "label selector, and load-balances across them.",
            {"spec": _ref(CORE + "ServiceSpec", "How the service is exposed."),
             "status": _ref(CORE + "ServiceStatus", "Observed state, e.g. the load "
                                                    "balancer.")},
        ),
        CORE + "ServiceSpec": _object(
            "How a service is exposed and which pods back it.",
            {
                "ports": _merge_list(CORE + "ServicePort", "Ports the service exposes.",
                                     "port", "protocol"),
                "selector": {**_map("Pods with these labels back the service; without a "
                                    "selector, endpoints are managed by hand."),
                             "x-kubernetes-map-type": "atomic"},
                "clusterIP": _string("Virtual IP of the service; allocated when empty, None "
                                     "for a headless service."),
                "clusterIPs": _strings("Virtual IPs, one per family; the first is clusterIP."),
                "type": _string("How the service is exposed; default ClusterIP.",
                                enum=["ClusterIP", "NodePort", "LoadBalancer",
                                      "ExternalName"]),
                "externalIPs": _strings("Extra IPs on which nodes accept traffic for the "
                                        "service."),
                "sessionAffinity": _string("Send a client to the same pod; default None.",
                                           enum=["ClientIP", "None"]),
                "sessionAffinityConfig": _ref(CORE + "SessionAffinityConfig",
                                              "Session affinity settings."),
                "loadBalancerIP": _string("Deprecated: requested load balancer IP."),
                "loadBalancerSourceRanges": _strings("Client CIDRs allowed through the load "
                                                     "balancer."),
                "loadBalancerClass": _string("Load balancer implementation to use."),
                "externalName": _string("DNS name returned as a CNAME, for ExternalName."),
                "externalTrafficPolicy": _string("Whether external traffic may leave the "
                                                 "node it arrived on.",
                                                 enum=["Cluster", "Local"]),
                "internalTrafficPolicy": _string("Whether in-cluster traffic may leave the "
                                                 "node it came from.",
                                                 enum=["Cluster", "Local"]),
                "healthCheckNodePort": _int32("Node port for load balancer health checks."),
                "publishNotReadyAddresses": _bool("Include pods that are not ready."),
                "ipFamilies": _strings("IP families of the service: IPv4, IPv6."),
                "ipFamilyPolicy": _string("How many IP families the service gets.",
                                          enum=["SingleStack", "PreferDualStack",
                                                "RequireDualStack"]),
                "allocateLoadBalancerNodePorts": _bool("Allocate node ports for a load "
                                                       "balancer; default true."),
                "trafficDistribution": _string("Preference for how traffic is spread, e.g. "
                                               "PreferClose."),
            },
        ),
        CORE + "ServicePort": _object(
            "One port of a service.",
            {
                "name": _string("Name of the port; required when there are several."),
                "protocol": _string("Protocol; default TCP.", enum=["TCP", "UDP", "SCTP"]),
                "appProtocol": _string("Application protocol, e.g. http."),
                "port": _int32("Port the service listens on."),
                "targetPort": _ref(INT_OR_STRING, "Port (number or name) on the pods; "
                                                  "default the same as port."),
                "nodePort": _int32("Port on every node, for NodePort and LoadBalancer; "
                                   "allocated when empty."),
            },
            ("port",),
        ),
        CORE + "SessionAffinityConfig": _object(
            "Session affinity settings.",
            {"clientIP": _ref(CORE + "ClientIPConfig", "ClientIP affinity settings.")},
        ),
        CORE + "ClientIPConfig": _object(
            "ClientIP affinity settings.",
            {"timeoutSeconds": _int32("How long a client sticks to a pod; default 3 "
                                      "hours.")},
        ),
        CORE + "ServiceStatus": _object(
            "Observed state of a service.",
            {"loadBalancer": _ref(CORE + "LoadBalancerStatus", "The load balancer, if any."),
             "conditions": _merge_list(META + "Condition", "Service conditions.", "type")},
        ),
        CORE + "LoadBalancerStatus": _object(
            "Where a load balancer can be reached.",
            {"ingress": _array(CORE + "LoadBalancerIngress", "Ingress points.")},
        ),
        CORE + "LoadBalancerIngress": _object(
            "One ingress point of a load balancer.",
            {"ip": _string("IP address."), "hostname": _string("DNS name."),
             "ipMode": _string("How traffic reaches the load balancer IP: VIP or Proxy."),
             "ports": _array(_loose("Status of one port."), "Per-port status.")},
        ),
        CORE + "Endpoints": _kind(
            "Endpoints lists the addresses that implement a service. Superseded by "
            "EndpointSlice but still maintained.",
            {"subsets": _array(CORE + "EndpointSubset", "Groups of addresses sharing the same "
                                                        "ports.")},
        ),
        CORE + "EndpointSubset": _object(
            "Addresses and the ports they all serve.",
            {
                "addresses": _array(CORE + "EndpointAddress", "Ready addresses."),
                "notReadyAddresses": _array(CORE + "EndpointAddress", "Addresses not ready "
                                                                      "yet."),
                "ports": _array(CORE + "EndpointPort", "Ports served by every address."),
            },
        ),
        CORE + "EndpointAddress": _object(
            "One endpoint address.",
            {"ip": _string("IP address."), "hostname": _string("Host name."),
             "nodeName": _string("Node hosting the endpoint."),
             "targetRef": _ref(CORE + "ObjectReference", "The pod behind the address.")},
            ("ip",),
            map_type="atomic",
        ),
        CORE + "EndpointPort": _object(
            "One port of an endpoint.",
            {"name": _string("Name, matching the service port name."),
             "port": _int32("Port number."),
             "protocol": _string("Protocol; default TCP.", enum=["TCP", "UDP", "SCTP"]),
             "appProtocol": _string("Application protocol.")},
            ("port",),
            map_type="atomic",
        ),
        CORE + "ConfigMap": _kind(
            "A ConfigMap holds non-secret configuration as key/value pairs for pods to use as "
            "environment variables, arguments or files.",
            {
                "data": _map("UTF-8 values by key."),
                "binaryData": _map("Binary values by key, base64-encoded.",
                                   {"type": "string", "format": "byte"}),
                "immutable": _bool("If true, data cannot change once set."),
            },
        ),
        CORE + "Secret": _kind(
            "A Secret holds sensitive data such as passwords, tokens or keys.",
            {
                "data": _map("Values by key, base64-encoded.",
                             {"type": "string", "format": "byte"}),
                "stringData": _map("Write-only convenience: plain-text values merged into "
                                   "data on write."),
                "type": _string("Used to validate and process the data, e.g. Opaque or "
                                "kubernetes.io/tls."),
                "immutable": _bool("If true, data cannot change once set."),
            },
        ),
        CORE + "ServiceAccount": _kind(
            "A ServiceAccount is an identity for processes running in pods.",
            {
                "secrets": _merge_list(CORE + "ObjectReference", "Secrets the account's pods "
                                                                 "may use (legacy tokens).",
                                       "name"),
                "imagePullSecrets": _array(CORE + "LocalObjectReference", "Registry "
                                                                          "credentials added "
                                                                          "to its pods."),
                "automountServiceAccountToken": _bool("Mount a token into pods by default."),
            },
        ),
        CORE + "Event": _kind(
            "An Event is a report that something happened to an object.",
            {
                "involvedObject": _ref(CORE + "ObjectReference", "The object the event is "
                                                                 "about."),
                "reason": _string("Short CamelCase reason, e.g. Scheduled."),
                "message": _string("Human-readable description."),
                "source": _ref(CORE + "EventSource", "Who reported the event."),
                "firstTimestamp": _ref(TIME, "When the event was first seen."),
                "lastTimestamp": _ref(TIME, "When the event was last seen."),
                "count": _int32("How many times it has happened."),
                "type": _string("Normal or Warning."),
                "eventTime": _ref(MICRO_TIME, "When the event was first observed (new "
                                              "style)."),
                "series": _ref(CORE + "EventSeries", "Data about a repeating event."),
                "action": _string("What was done, or failed."),
                "related": _ref(CORE + "ObjectReference", "A second object involved."),
                "reportingComponent": _string("Controller that emitted the event."),
                "reportingInstance": _string("Instance of that controller."),
            },
            "metadata",
            "involvedObject",
        ),
        CORE + "EventSource": _object(
            "Who reported an event.",
            {"component": _string("Component, e.g. kubelet."),
             "host": _string("Node name, when from a node.")},
        ),
        CORE + "EventSeries": _object(
            "A repeating event.",
            {"count": _int32("Occurrences so far."),
             "lastObservedTime": _ref(MICRO_TIME, "When it was last observed.")},
        ),
    }


def _workload_schemas() -> dict[str, Schema]:
    selector = _ref(META + "LabelSelector", "Pods this object manages; must match the "
                                            "template's labels.")
    template = _ref(CORE + "PodTemplateSpec", "The pods to create.")
    return {
        APPS + "Deployment": _kind(
            "A Deployment declares a replicated, rolling-updated set of pods, through "
            "ReplicaSets it manages.",
            {"spec": _ref(APPS + "DeploymentSpec", "Desired state."),
             "status": _ref(APPS + "DeploymentStatus", "Observed state.")},
        ),
        APPS + "DeploymentSpec": _object(
            "Desired state of a deployment.",
            {
                "replicas": _int32("Number of pods wanted; default 1."),
                "selector": selector,
                "template": template,
                "strategy": {**_ref(APPS + "DeploymentStrategy", "How old pods are replaced "
                                                                 "by new ones."),
                             "x-kubernetes-patch-strategy": "retainKeys"},
                "minReadySeconds": _int32("Seconds a new pod must be ready to count as "
                                          "available."),
                "revisionHistoryLimit": _int32("Old ReplicaSets kept for rollback; default "
                                               "10."),
                "paused": _bool("Stop rolling out template changes."),
                "progressDeadlineSeconds": _int32("Seconds before a stalled rollout is "
                                                  "reported as failed; default 600."),
            },
            ("selector", "template"),
        ),
        APPS + "DeploymentStrategy": _object(
            "How a deployment replaces pods.",
            {"type": _string("Rollout type; default RollingUpdate.",
                             enum=["Recreate", "RollingUpdate"]),
             "rollingUpdate": _ref(APPS + "RollingUpdateDeployment", "Rolling update "
                                                                     "limits.")},
        ),
        APPS + "RollingUpdateDeployment": _object(
            "Limits of a rolling update.",
            {"maxUnavailable": _ref(INT_OR_STRING, "Pods (or percent) that may be unavailable "
                                                   "during the update; default 25%."),
             "maxSurge": _ref(INT_OR_STRING, "Pods (or percent) above replicas during the "
                                             "update; default 25%.")},
        ),
        APPS + "DeploymentStatus": _object(
            "Observed state of a deployment.",
            {
                "observedGeneration": _int64("Generation the controller last acted on."),
                "replicas": _int32("Pods targeted by the deployment."),
                "updatedReplicas": _int32("Pods with the current template."),
                "readyReplicas": _int32("Pods that are ready."),
                "availableReplicas": _int32("Pods ready for at least minReadySeconds."),
                "unavailableReplicas": _int32("Pods still needed for full availability."),
                "terminatingReplicas": _int32("Pods being deleted."),
                "conditions": _merge_list(APPS + "DeploymentCondition", "Deployment "
                                                                        "conditions.",
                                          "type"),
                "collisionCount": _int32("Hash collision counter for ReplicaSet names."),
            },
        ),
        APPS + "DeploymentCondition": _condition("One aspect of a deployment's state, e.g. "
                                                 "Available or Progressing.",
                                                 "lastUpdateTime"),
        APPS + "ReplicaSet": _kind(
            "A ReplicaSet keeps a number of identical pods running.",
            {"spec": _ref(APPS + "ReplicaSetSpec", "Desired state."),
             "status": _ref(APPS + "ReplicaSetStatus", "Observed state.")},
        ),
        APPS + "ReplicaSetSpec": _object(
            "Desired state of a replica set.",
            {"replicas": _int32("Number of pods wanted; default 1."),
             "minReadySeconds": _int32("Seconds a pod must be ready to count as available."),
             "selector": selector, "template": template},
            ("selector",),
        ),
        APPS + "ReplicaSetStatus": _object(
            "Observed state of a replica set.",
            {
                "replicas": _int32("Pods that exist."),
                "fullyLabeledReplicas": _int32("Pods whose labels match the template."),
                "readyReplicas": _int32("Pods that are ready."),
                "availableReplicas": _int32("Pods ready for at least minReadySeconds."),
                "terminatingReplicas": _int32("Pods being deleted."),
                "observedGeneration": _int64("Generation the controller last acted on."),
                "conditions": _merge_list(APPS + "ReplicaSetCondition", "Replica set "
                                                                        "conditions.",
                                          "type"),
            },
            ("replicas",),
        ),
        APPS + "ReplicaSetCondition": _condition("One aspect of a replica set's state."),
        APPS + "DaemonSet": _kind(
            "A DaemonSet runs a copy of a pod on every (selected) node.",
            {"spec": _ref(APPS + "DaemonSetSpec", "Desired state."),
             "status": _ref(APPS + "DaemonSetStatus", "Observed state.")},
        ),
        APPS + "DaemonSetSpec": _object(
            "Desired state of a daemon set.",
            {"selector": selector, "template": template,
             "updateStrategy": _ref(APPS + "DaemonSetUpdateStrategy", "How pods are "
                                                                      "replaced."),
             "minReadySeconds": _int32("Seconds a pod must be ready to count as available."),
             "revisionHistoryLimit": _int32("Old revisions kept for rollback; default 10.")},
            ("selector", "template"),
        ),
        APPS + "DaemonSetUpdateStrategy": _object(
            "How a daemon set replaces pods.",
            {"type": _string("Update type; default RollingUpdate.",
                             enum=["OnDelete", "RollingUpdate"]),
             "rollingUpdate": _ref(APPS + "RollingUpdateDaemonSet", "Rolling update "
                                                                    "limits.")},
        ),
        APPS + "RollingUpdateDaemonSet": _object(
            "Limits of a daemon set rolling update.",
            {"maxUnavailable": _ref(INT_OR_STRING, "Nodes (or percent) whose pod may be "
                                                   "unavailable; default 1."),
             "maxSurge": _ref(INT_OR_STRING, "Nodes (or percent) that may run an extra new "
                                             "pod during the update; default 0.")},
        ),
        APPS + "DaemonSetStatus": _object(
            "Observed state of a daemon set.",
            {
                "currentNumberScheduled": _int32("Nodes running at least one daemon pod that "
                                                 "should."),
                "numberMisscheduled": _int32("Nodes running a daemon pod that should not."),
                "desiredNumberScheduled": _int32("Nodes that should run the daemon pod."),
                "numberReady": _int32("Nodes whose daemon pod is ready."),
                "observedGeneration": _int64("Generation the controller last acted on."),
                "updatedNumberScheduled": _int32("Nodes running the current template."),
                "numberAvailable": _int32("Nodes whose daemon pod is available."),
                "numberUnavailable": _int32("Nodes whose daemon pod is not available."),
                "collisionCount": _int32("Hash collision counter."),
                "conditions": _merge_list(APPS + "DaemonSetCondition", "Daemon set "
                                                                       "conditions.", "type"),
            },
            ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled",
             "numberReady"),
        ),
        APPS + "DaemonSetCondition": _condition("One aspect of a daemon set's state."),
        BATCH + "Job": _kind(
            "A Job runs pods until a number of them complete successfully.",
            {"spec": _ref(BATCH + "JobSpec", "Desired state."),
             "status": _ref(BATCH + "JobStatus", "Observed state.")},
        ),
        BATCH + "JobSpec": _object(
            "Desired state of a job.",
            {
                "parallelism": _int32("Most pods running at once; default 1."),
                "completions": _int32("Successful pods needed; unset means any one success "
                                      "ends the job."),
                "activeDeadlineSeconds": _int64("Seconds the job may run before it is "
                                                "failed."),
                "backoffLimit": _int32("Retries before the job is failed; default 6."),
                "backoffLimitPerIndex": _int32("Retries per index, for Indexed jobs."),
                "maxFailedIndexes": _int32("Failed indexes tolerated, for Indexed jobs."),
                "podFailurePolicy": _loose("Rules for handling pod failures."),
                "successPolicy": _loose("Rules for declaring success early."),
                "selector": _ref(META + "LabelSelector", "Pods of the job; generated unless "
                                                         "manualSelector."),
                "manualSelector": _bool("Use the given selector instead of generating one."),
                "template": template,
                "ttlSecondsAfterFinished": _int32("Delete the job this many seconds after it "
                                                  "finishes."),
                "completionMode": _string("How completions are counted; default NonIndexed.",
                                          enum=["NonIndexed", "Indexed"]),
                "suspend": _bool("Suspend the job: delete its running pods and start none."),
                "podReplacementPolicy": _string("When replacement pods are created.",
                                                enum=["TerminatingOrFailed", "Failed"]),
                "managedBy": _string("Controller that manages the job."),
            },
            ("template",),
        ),
        BATCH + "JobStatus": _object(
            "Observed state of a job.",
            {
                "conditions": _array(BATCH + "JobCondition", "Job conditions: Complete, "
                                                             "Failed, Suspended...",
                                     merge_key="type", strategy="merge"),
                "startTime": _ref(TIME, "When the job controller started the job."),
                "completionTime": _ref(TIME, "When the job completed."),
                "active": _int32("Pods currently running."),
                "succeeded": _int32("Pods that succeeded."),
                "failed": _int32("Pods that failed."),
                "terminating": _int32("Pods being deleted."),
                "ready": _int32("Running pods that are ready."),
                "completedIndexes": _string("Completed indexes, for Indexed jobs."),
                "failedIndexes": _string("Failed indexes, for Indexed jobs."),
                "uncountedTerminatedPods": _loose("Finished pods not yet counted."),
            },
        ),
        BATCH + "JobCondition": _condition("One aspect of a job's state.", "lastProbeTime"),
        COORDINATION + "Lease": _kind(
            "A Lease is a lightweight lock with a holder and an expiry, used for leader "
            "election and node heartbeats.",
            {"spec": _ref(COORDINATION + "LeaseSpec", "The lease's holder and timing.")},
        ),
        COORDINATION + "LeaseSpec": _object(
            "Holder and timing of a lease.",
            {
                "holderIdentity": _string("Identity of the current holder."),
                "leaseDurationSeconds": _int32("Seconds after renewTime before others may "
                                               "take the lease."),
                "acquireTime": _ref(MICRO_TIME, "When the current holder acquired it."),
                "renewTime": _ref(MICRO_TIME, "When the holder last renewed it."),
                "leaseTransitions": _int32("How many times the holder has changed."),
                "strategy": _string("Leader election strategy, for coordinated election."),
                "preferredHolder": _string("Holder the lease should pass to."),
            },
        ),
        DISCOVERY + "EndpointSlice": _kind(
            "An EndpointSlice lists some of the endpoints of a service; the EndpointSlice "
            "controller maintains them for services with a selector.",
            {
                "addressType": _string("Type of every address in the slice.",
                                       enum=["IPv4", "IPv6", "FQDN"]),
                "endpoints": _array(DISCOVERY + "Endpoint", "The endpoints; at most 1000."),
                "ports": _array(DISCOVERY + "EndpointPort", "Ports served by every "
                                                            "endpoint."),
            },
            "addressType",
            "endpoints",
        ),
        DISCOVERY + "Endpoint": _object(
            "One endpoint of a service.",
            {
                "addresses": _strings("Addresses of the endpoint; all interchangeable.",
                                      list_type="set"),
                "conditions": _ref(DISCOVERY + "EndpointConditions", "Readiness of the "
                                                                     "endpoint."),
                "hostname": _string("Host name of the endpoint."),
                "targetRef": _ref(CORE + "ObjectReference", "The pod behind the endpoint."),
                "nodeName": _string("Node hosting the endpoint."),
                "zone": _string("Zone of the endpoint."),
                "hints": _ref(DISCOVERY + "EndpointHints", "Topology routing hints."),
                "deprecatedTopology": _map("Deprecated topology labels."),
            },
            ("addresses",),
        ),
        DISCOVERY + "EndpointConditions": _object(
            "Readiness of an endpoint.",
            {"ready": _bool("Ready to receive traffic."),
             "serving": _bool("Able to serve, whether or not terminating."),
             "terminating": _bool("Shutting down.")},
        ),
        DISCOVERY + "EndpointHints": _object(
            "Hints for topology-aware routing.",
            {"forZones": _array(DISCOVERY + "ForZone", "Zones that should use this "
                                                       "endpoint."),
             "forNodes": _array(_loose("A node that should use this endpoint."),
                                "Nodes that should use this endpoint.")},
        ),
        DISCOVERY + "ForZone": _object(
            "A zone that should use an endpoint.",
            {"name": _string("Name of the zone.")},
            ("name",),
        ),
        DISCOVERY + "EndpointPort": _object(
            "One port of the endpoints in a slice.",
            {"name": _string("Name, matching the service port name."),
             "protocol": _string("Protocol; default TCP.", enum=["TCP", "UDP", "SCTP"]),
             "port": _int32("Port number; unset means all ports."),
             "appProtocol": _string("Application protocol.")},
            map_type="atomic",
        ),
        AUTOSCALING + "Scale": _kind(
            "The scale subresource of a workload: desired and current replicas.",
            {"spec": _ref(AUTOSCALING + "ScaleSpec", "Desired replicas."),
             "status": _ref(AUTOSCALING + "ScaleStatus", "Current replicas.")},
        ),
        AUTOSCALING + "ScaleSpec": _object(
            "Desired scale.", {"replicas": _int32("Desired number of replicas.")},
        ),
        AUTOSCALING + "ScaleStatus": _object(
            "Observed scale.",
            {"replicas": _int32("Observed number of replicas."),
             "selector": _string("Label selector of the pods, as a string.")},
            ("replicas",),
        ),
        POLICY + "Eviction": _kind(
            "Evicts a pod, honouring PodDisruptionBudgets; posted to pods/eviction.",
            {"deleteOptions": _ref(META + "DeleteOptions", "Options for the deletion.")},
        ),
    }


def _rbac_schemas() -> dict[str, Schema]:
    """rbac.authorization.k8s.io/v1: every list is atomic, so apply replaces it whole."""
    rules = _array(RBAC + "PolicyRule", "The PolicyRules of this role.")
    subjects = _array(RBAC + "Subject", "The users, groups and service accounts bound.")
    return {
        RBAC + "PolicyRule": _object(
            "What a rule allows: verbs on resources of API groups (optionally only some "
            "names), or verbs on non-resource URLs.",
            {
                "apiGroups": _strings("API groups of the resources; \"\" is the core group "
                                      "and \"*\" any group."),
                "nonResourceURLs": _strings("Partial URLs a user may reach, such as /healthz; "
                                            "a trailing * matches any suffix. Only in "
                                            "ClusterRoles, and not with resources."),
                "resourceNames": _strings("Names the rule is restricted to; empty means all."),
                "resources": _strings("Resources the rule applies to; \"*\" means all, "
                                      "pods/log a subresource, */scale a subresource of any "
                                      "resource."),
                "verbs": _strings("Verbs allowed, such as get or create; \"*\" means all."),
            },
            ("verbs",),
        ),
        RBAC + "AggregationRule": _object(
            "How to build a ClusterRole's rules from other ClusterRoles.",
            {"clusterRoleSelectors": _array(META + "LabelSelector", "Selectors of the "
                                            "ClusterRoles whose rules are aggregated; the "
                                            "controller owns the rules if any is given.")},
        ),
        RBAC + "RoleRef": _object(
            "The role a binding grants.",
            {"apiGroup": _string("Group of the referenced role: rbac.authorization.k8s.io."),
             "kind": _string("Kind of the referenced role: Role or ClusterRole."),
             "name": _string("Name of the referenced role.")},
            ("apiGroup", "kind", "name"),
            map_type="atomic",
        ),
        RBAC + "Subject": _object(
            "A user, group or service account a binding applies to.",
            {"apiGroup": _string("\"\" for ServiceAccount; rbac.authorization.k8s.io for "
                                 "User and Group."),
             "kind": _string("User, Group or ServiceAccount."),
             "name": _string("Name of the subject."),
             "namespace": _string("Namespace of a ServiceAccount subject.")},
            ("kind", "name"),
            map_type="atomic",
        ),
        RBAC + "Role": _kind(
            "A namespaced set of PolicyRules, granted by a RoleBinding.",
            {"rules": rules},
        ),
        RBAC + "ClusterRole": _kind(
            "A cluster-level set of PolicyRules, granted by a RoleBinding (in one namespace) "
            "or a ClusterRoleBinding (everywhere).",
            {"aggregationRule": _ref(RBAC + "AggregationRule", "When set, the controller "
                                     "manages rules as the union of the selected roles."),
             "rules": rules},
        ),
        RBAC + "RoleBinding": _kind(
            "Grants the permissions of a Role or ClusterRole to subjects within one "
            "namespace.",
            {"roleRef": _ref(RBAC + "RoleRef", "A Role in this namespace or a ClusterRole. "
                             "Immutable."),
             "subjects": subjects},
            "roleRef",
        ),
        RBAC + "ClusterRoleBinding": _kind(
            "Grants the permissions of a ClusterRole to subjects cluster-wide.",
            {"roleRef": _ref(RBAC + "RoleRef", "A ClusterRole. Immutable."),
             "subjects": subjects},
            "roleRef",
        ),
    }


def _schema_table() -> dict[str, Schema]:
    table: dict[str, Schema] = {}
    for part in (_meta_schemas, _container_schemas, _volume_schemas, _scheduling_schemas,
                 _pod_schemas, _core_schemas, _workload_schemas, _rbac_schemas):
        table.update(part())
    return table


# Written once at import and never mutated: documents are built from deep copies.
SCHEMAS: dict[str, Schema] = _schema_table()

# Kinds that are not catalogue resources but appear in paths, with their fixed GVKs.
_EXTRA_GVKS: dict[str, list[dict[str, str]]] = {
    META + "Status": [{"group": "", "kind": "Status", "version": "v1"}],
    CORE + "Binding": [{"group": "", "kind": "Binding", "version": "v1"}],
    AUTOSCALING + "Scale": [{"group": "autoscaling", "kind": "Scale", "version": "v1"}],
    POLICY + "Eviction": [{"group": "policy", "kind": "Eviction", "version": "v1"}],
}


# ---------------------------------------------------------------------------------------------
# naming


def _package(group: str) -> str:
    # Upstream names types after the Go package: coordination.k8s.io -> coordination.
    return group.split(".")[0] if group else "core"


def schema_name(group: str, version: str, kind: str) -> str:
    """The components/definitions key of a kind, e.g. io.k8s.api.apps.v1.Deployment."""
    return f"io.k8s.api.{_package(group)}.{version}.{kind}"


def _gvk(group: str, version: str, kind: str) -> dict[str, str]:
    return {"group": group, "kind": kind, "version": version}


def _friendly_group(group: str) -> str:
    """Group as used in operation ids and tags: "" -> Core, rbac.authorization.k8s.io ->
    RbacAuthorization."""
    if not group:
        return "Core"
    trimmed = group.removesuffix(".k8s.io")
    return "".join(part[:1].upper() + part[1:] for part in trimmed.split(".") if part)


def _tag(group: str, version: str) -> str:
    friendly = _friendly_group(group)
    return f"{friendly[:1].lower()}{friendly[1:]}_{version}"


def group_version_path(group: str, version: str) -> str:
    """The key of a group-version in the /openapi/v3 index: api/v1 or apis/<group>/<v>."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def parse_group_version_path(path: str) -> tuple[str, str] | None:
    """Inverse of group_version_path; None for anything else."""
    parts = path.strip("/").split("/")
    if len(parts) == 2 and parts[0] == "api" and parts[1]:
        return "", parts[1]
    if len(parts) == 3 and parts[0] == "apis" and parts[1] and parts[2]:
        return parts[1], parts[2]
    return None


# ---------------------------------------------------------------------------------------------
# schemas of one document


def _generic_kind(resource: Resource) -> Schema:
    # A kind added to the catalogue before anyone wrote its schema: accept anything.
    return _kind(
        f"{resource.kind} objects. This server does not publish a detailed schema for them.",
        {"spec": _loose("Desired state."), "status": _loose("Observed state.")},
    )


def _list_schema(resource: Resource, item_schema: str) -> Schema:
    return _object(
        f"{resource.list_kind} is a list of {resource.kind} objects.",
        {
            "apiVersion": _API_VERSION,
            "items": _array(item_schema, f"The {resource.plural}."),
            "kind": _KIND,
            "metadata": _LIST_METADATA,
        },
        ("items",),
    )


def _catalogue_schemas(catalogue: Catalogue) -> dict[str, Schema]:
    """Every schema, with GVK extensions on the catalogue's kinds and their lists."""
    schemas = copy.deepcopy(SCHEMAS)
    for name, gvks in _EXTRA_GVKS.items():
        schemas[name]["x-kubernetes-group-version-kind"] = copy.deepcopy(gvks)
    # DeleteOptions is accepted by every group-version; say so the way upstream does.
    schemas[META + "DeleteOptions"]["x-kubernetes-group-version-kind"] = [
        _gvk(group, version, "DeleteOptions")
        for group, version in _group_versions(catalogue)
    ]
    for resource in catalogue.resources:
        name = schema_name(resource.group, resource.version, resource.kind)
        if name not in schemas:
            schemas[name] = _generic_kind(resource)
        schemas[name]["x-kubernetes-group-version-kind"] = [
            _gvk(resource.group, resource.version, resource.kind)
        ]
        list_name = schema_name(resource.group, resource.version, resource.list_kind)
        schemas[list_name] = _list_schema(resource, name)
        schemas[list_name]["x-kubernetes-group-version-kind"] = [
            _gvk(resource.group, resource.version, resource.list_kind)
        ]
    return schemas


def _group_versions(catalogue: Catalogue) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    for resource in catalogue.resources:
        if (resource.group, resource.version) not in seen:
            seen.append((resource.group, resource.version))
    return seen


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str):
                found.add(ref)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _closure(roots: set[str], schemas: dict[str, Schema]) -> dict[str, Schema]:
    """The schemas reachable from roots, so each document carries exactly what it refers to."""
    picked: dict[str, Schema] = {}
    pending = sorted(roots)
    while pending:
        name = pending.pop()
        if name in picked or name not in schemas:
            continue
        picked[name] = schemas[name]
        pending.extend(sorted(_refs(schemas[name]) - picked.keys()))
    return dict(sorted(picked.items()))


# ---------------------------------------------------------------------------------------------
# operations, described once and rendered for v2 and v3

_PARAMETERS: dict[str, tuple[str, str, str]] = {
    # name: (in, type, description)
    "name": ("path", "string", "name of the object"),
    "namespace": ("path", "string", "object name and auth scope, such as for teams and projects"),
    "pretty": ("query", "string", "If 'true', then the output is pretty printed."),
    "dryRun": ("query", "string", "If All, run every stage of the request but persist nothing."),
    "fieldManager": ("query", "string", ("Name of the actor making the change, used to track "
                                         "field ownership; required for apply patches.")),
    "fieldValidation": ("query", "string", ("What to do about unknown or duplicate fields in "
                                            "the object: Ignore, Warn or Strict.")),
    "force": ("query", "boolean", ("Take ownership of conflicting fields in an apply patch; "
                                   "must be unset for other patch types.")),
    "allowWatchBookmarks": ("query", "boolean", "Ask for BOOKMARK events in a watch."),
    "continue": ("query", "string", "Continue token from a previous limited list."),
    "fieldSelector": ("query", "string", ("Select objects by field values, e.g. "
                                          "spec.nodeName=n1. Defaults to everything.")),
    "labelSelector": ("query", "string", "Select objects by labels. Defaults to everything."),
    "limit": ("query", "integer", "Maximum number of items; fetch the rest with continue."),
    "resourceVersion": ("query", "string", "Serve the list or watch from this version."),
    "resourceVersionMatch": ("query", "string", "How resourceVersion is applied to a list."),
    "sendInitialEvents": ("query", "boolean", ("Start a watch with synthetic ADDED events for "
                                               "the objects that already exist.")),
    "timeoutSeconds": ("query", "integer", "Time limit of the list or watch call."),
    "watch": ("query", "boolean", "Watch for changes instead of listing."),
    "gracePeriodSeconds": ("query", "integer", ("Seconds before the object is deleted; 0 "
                                                "deletes immediately.")),
    "orphanDependents": ("query", "boolean", "Deprecated: use propagationPolicy."),
    "propagationPolicy": ("query", "string", ("Whether and how dependents are garbage "
                                              "collected: Orphan, Background or Foreground.")),
    "container": ("query", "string", "The container to use; defaults to the only one."),
    "follow": ("query", "boolean", "Stream the log as it grows."),
    "previous": ("query", "boolean", "Return the log of the previous, terminated run."),
    "sinceSeconds": ("query", "integer", "Only lines newer than this many seconds."),
    "tailLines": ("query", "integer", "Only this many lines from the end."),
    "timestamps": ("query", "boolean", "Prefix each line with its timestamp."),
    "limitBytes": ("query", "integer", "Stop after this many bytes."),
    "command": ("query", "string", "Command to execute; repeat for each argument."),
    "stdin": ("query", "boolean", "Attach stdin."),
    "stdout": ("query", "boolean", "Attach stdout; default true."),
    "stderr": ("query", "boolean", "Attach stderr; default true."),
    "tty": ("query", "boolean", "Allocate a TTY."),
}

_LIST_PARAMS = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit",
                "resourceVersion", "resourceVersionMatch", "sendInitialEvents",
                "timeoutSeconds", "watch")
_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation")
_PATCH_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "force")
_DELETE_PARAMS = ("dryRun", "gracePeriodSeconds", "orphanDependents", "propagationPolicy")
_DELETE_COLLECTION_PARAMS = ("continue", "dryRun", "fieldSelector", "gracePeriodSeconds",
                             "labelSelector", "limit", "orphanDependents",
                             "propagationPolicy", "resourceVersion", "resourceVersionMatch",
                             "sendInitialEvents", "timeoutSeconds")


def _op(
    method: str,
    action: str,
    op_id: str,
    description: str,
    gvk: dict[str, str],
    params: tuple[str, ...] = (),
    body: str = "",
    body_types: tuple[str, ...] = ("*/*",),
    response: str = "",
    codes: tuple[str, ...] = ("200",),
    stream: bool = False,
) -> dict[str, Any]:
    return {
        "method": method, "action": action, "id": op_id, "description": description,
        "gvk": gvk, "params": params, "body": body, "body_types": body_types,
        "response": response, "codes": codes, "stream": stream,
    }


_CODE_TEXT = {"200": "OK", "201": "Created", "202": "Accepted"}


def _resource_paths(resource: Resource) -> dict[str, dict[str, Any]]:
    """Neutral path items: {path: {"params": [...], "ops": [op, ...]}}."""
    g, v, kind = resource.group, resource.version, resource.kind
    prefix = f"/apis/{g}/{v}" if g else f"/api/{v}"
    id_part = f"{_friendly_group(g)}{v[:1].upper()}{v[1:]}"
    scope = "Namespaced" if resource.namespaced else ""
    base = (f"{prefix}/namespaces/{{namespace}}/{resource.plural}" if resource.namespaced
            else f"{prefix}/{resource.plural}")
    item = base + "/{name}"
    scope_params = ("namespace",) if resource.namespaced else ()
    gvk = _gvk(g, v, kind)
    name = schema_name(g, v, kind)
    list_name = schema_name(g, v, resource.list_kind)
    verbs = set(resource.verbs)
    status_schema = META + "Status"
    delete_options = META + "DeleteOptions"
    patch_schema = META + "Patch"

    paths: dict[str, dict[str, Any]] = {}
    collection: list[dict[str, Any]] = []
    if "list" in verbs or "watch" in verbs:
        collection.append(_op("get", "list", f"list{id_part}{scope}{kind}",
                              f"list or watch objects of kind {kind}", gvk, _LIST_PARAMS,
                              response=list_name, stream=True))
    if "create" in verbs:
        collection.append(_op("post", "post", f"create{id_part}{scope}{kind}",
                              f"create a {kind}", gvk, _WRITE_PARAMS, body=name,
                              response=name, codes=("200", "201", "202")))
    if "deletecollection" in verbs:
        collection.append(_op("delete", "deletecollection",
                              f"deleteCollection{id_part}{scope}{kind}",
                              f"delete collection of {kind}", gvk, _DELETE_COLLECTION_PARAMS,
                              body=delete_options, response=status_schema))
    if collection:
        paths[base] = {"params": (*scope_params, "pretty"), "ops": collection}

    single: list[dict[str, Any]] = []
    if "get" in verbs:
        single.append(_op("get", "get", f"read{id_part}{scope}{kind}",
                          f"read the specified {kind}", gvk, response=name))
    if "update" in verbs:
        single.append(_op("put", "put", f"replace{id_part}{scope}{kind}",
                          f"replace the specified {kind}", gvk, _WRITE_PARAMS, body=name,
                          response=name, codes=("200", "201")))
    if "patch" in verbs:
        single.append(_op("patch", "patch", f"patch{id_part}{scope}{kind}",
                          f"partially update the specified {kind}", gvk, _PATCH_PARAMS,
                          body=patch_schema, body_types=PATCH_CONTENT_TYPES, response=name,
                          codes=("200", "201")))
    if "delete" in verbs:
        single.append(_op("delete", "delete", f"delete{id_part}{scope}{kind}",
                          f"delete a {kind}", gvk, _DELETE_PARAMS, body=delete_options,
                          response=status_schema, codes=("200", "202")))
    if single:
        paths[item] = {"params": ("name", *scope_params, "pretty"), "ops": single}

    if resource.namespaced and ("list" in verbs or "watch" in verbs):
        paths[f"{prefix}/{resource.plural}"] = {
            "params": ("pretty",),
            "ops": [_op("get", "list", f"list{id_part}{kind}ForAllNamespaces",
                        f"list or watch objects of kind {kind}", gvk, _LIST_PARAMS,
                        response=list_name, stream=True)],
        }

    for sub in resource.subresources:
        sub_path = f"{item}/{sub}"
        sub_title = sub[:1].upper() + sub[1:]
        params = ("name", *scope_params, "pretty")
        if sub in ("status", "scale"):
            sub_gvk, sub_schema = gvk, name
            if sub == "scale":
                gv, sub_kind = SUBRESOURCE_KINDS["scale"]
                sub_group, _, sub_version = gv.rpartition("/")
                sub_gvk = _gvk(sub_group, sub_version, sub_kind)
                sub_schema = schema_name(sub_group, sub_version, sub_kind)
            ops = [
                _op("get", "get", f"read{id_part}{scope}{kind}{sub_title}",
                    f"read {sub} of the specified {kind}", sub_gvk, response=sub_schema),
                _op("put", "put", f"replace{id_part}{scope}{kind}{sub_title}",
                    f"replace {sub} of the specified {kind}", sub_gvk, _WRITE_PARAMS,
                    body=sub_schema, response=sub_schema, codes=("200", "201")),
                _op("patch", "patch", f"patch{id_part}{scope}{kind}{sub_title}",
                    f"partially update {sub} of the specified {kind}", sub_gvk,
                    _PATCH_PARAMS, body=patch_schema, body_types=PATCH_CONTENT_TYPES,
                    response=sub_schema, codes=("200", "201")),
            ]
        elif sub == "finalize":
            ops = [_op("put", "put", f"replace{id_part}{scope}{kind}{sub_title}",
                       f"replace finalize of the specified {kind}", gvk, _WRITE_PARAMS,
                       body=name, response=name, codes=("200", "201"))]
        elif sub in ("binding", "eviction"):
            gv, sub_kind = SUBRESOURCE_KINDS[sub]
            sub_group, _, sub_version = gv.rpartition("/")
            sub_schema = schema_name(sub_group, sub_version, sub_kind)
            ops = [_op("post", "post", f"create{id_part}{scope}{kind}{sub_title}",
                       f"create {sub} of a {kind}", _gvk(sub_group, sub_version, sub_kind),
                       _WRITE_PARAMS, body=sub_schema, response=sub_schema,
                       codes=("200", "201", "202"))]
        elif sub == "log":
            ops = [_op("get", "get", f"read{id_part}{scope}{kind}Log",
                       f"read log of the specified {kind}", gvk,
                       ("container", "follow", "limitBytes", "previous", "sinceSeconds",
                        "tailLines", "timestamps"), response="string")]
        elif sub == "exec":
            exec_gvk = _gvk(g, v, f"{kind}ExecOptions")
            exec_params = ("command", "container", "stderr", "stdin", "stdout", "tty")
            ops = [
                _op("get", "connect", f"connect{id_part}Get{scope}{kind}Exec",
                    f"connect GET requests to exec of {kind}", exec_gvk, exec_params,
                    response="string"),
                _op("post", "connect", f"connect{id_part}Post{scope}{kind}Exec",
                    f"connect POST requests to exec of {kind}", exec_gvk, exec_params,
                    response="string"),
            ]
        else:
            continue
        paths[sub_path] = {"params": params, "ops": ops}
    return paths


def _v3_parameter(name: str) -> dict[str, Any]:
    where, type_, description = _PARAMETERS[name]
    param: dict[str, Any] = {
        "name": name,
        "in": where,
        "description": description,
        "schema": {"type": type_, "uniqueItems": True},
    }
    if where == "path":
        param["required"] = True
    return param


def _v2_parameter(name: str) -> dict[str, Any]:
    where, type_, description = _PARAMETERS[name]
    param: dict[str, Any] = {
        "name": name,
        "in": where,
        "description": description,
        "type": type_,
        "uniqueItems": True,
    }
    if where == "path":
        param["required"] = True
    return param


def _v3_media(schema_name_: str) -> dict[str, Any]:
    if schema_name_ == "string":
        return {"schema": {"type": "string"}}
    return {"schema": {"$ref": V3_REF_PREFIX + schema_name_}}


def _v3_operation(op: dict[str, Any]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for code in op["codes"]:
        content = {"application/json": _v3_media(op["response"])}
        if op["stream"]:
            content["application/json;stream=watch"] = _v3_media(op["response"])
        responses[code] = {"description": _CODE_TEXT[code], "content": content}
    responses["401"] = {"description": "Unauthorized"}
    rendered: dict[str, Any] = {
        "tags": [_tag(op["gvk"]["group"], op["gvk"]["version"])],
        "description": op["description"],
        "operationId": op["id"],
    }
    if op["params"]:
        # Inline, never $ref: kubectl's field-validation probe reads each parameter's name
        # directly off the PATCH operation.
        rendered["parameters"] = [_v3_parameter(p) for p in op["params"]]
    if op["body"]:
        rendered["requestBody"] = {
            "content": {t: _v3_media(op["body"]) for t in op["body_types"]},
            "required": op["action"] != "delete" and op["action"] != "deletecollection",
        }
    rendered["responses"] = responses
    rendered["x-kubernetes-action"] = op["action"]
    rendered["x-kubernetes-group-version-kind"] = dict(op["gvk"])
    return rendered


def _v2_operation(op: dict[str, Any]) -> dict[str, Any]:
    params = [_v2_parameter(p) for p in op["params"]]
    if op["body"]:
        params.insert(0, {
            "name": "body",
            "in": "body",
            "required": op["action"] not in ("delete", "deletecollection"),
            "schema": {"$ref": V2_REF_PREFIX + op["body"]},
        })
    responses: dict[str, Any] = {}
    for code in op["codes"]:
        schema = ({"type": "string"} if op["response"] == "string"
                  else {"$ref": V2_REF_PREFIX + op["response"]})
        responses[code] = {"description": _CODE_TEXT[code], "schema": schema}
    responses["401"] = {"description": "Unauthorized"}
    produces = ["application/json"]
    if op["stream"]:
        produces.append("application/json;stream=watch")
    rendered: dict[str, Any] = {
        "tags": [_tag(op["gvk"]["group"], op["gvk"]["version"])],
        "description": op["description"],
        "operationId": op["id"],
        "consumes": list(op["body_types"]),
        "produces": produces,
        "schemes": ["https"],
    }
    if params:
        rendered["parameters"] = params
    rendered["responses"] = responses
    rendered["x-kubernetes-action"] = op["action"]
    rendered["x-kubernetes-group-version-kind"] = dict(op["gvk"])
    return rendered


def _neutral_paths(resources: list[Resource]) -> dict[str, dict[str, Any]]:
    paths: dict[str, dict[str, Any]] = {}
    for resource in resources:
        paths.update(_resource_paths(resource))
    return dict(sorted(paths.items()))


def _path_refs(paths: dict[str, dict[str, Any]]) -> set[str]:
    roots: set[str] = set()
    for item in paths.values():
        for op in item["ops"]:
            for name in (op["body"], op["response"]):
                if name and name != "string":
                    roots.add(name)
    return roots


# ---------------------------------------------------------------------------------------------
# neutral schema -> v3 / v2


def _to_v3(node: Any) -> Any:
    if isinstance(node, list):
        return [_to_v3(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("_"):
            continue
        out[key] = _to_v3(value)
    for key, value in node.get("_v3", {}).items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = copy.deepcopy(value)
    ref = out.pop("$ref", None)
    if ref is None:
        return out
    target = {"$ref": V3_REF_PREFIX + ref}
    if not out:
        return target
    # OpenAPI 3.0 ignores siblings of $ref, so a field that has its own description (or
    # patch extensions) wraps the reference in allOf, as kube-openapi does; kubectl's
    # explain and strategic-merge code both look through allOf[0].
    return {"allOf": [target], **out}


def _to_v2(node: Any) -> Any:
    if isinstance(node, list):
        return [_to_v2(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("_"):
            continue
        if key == "$ref":
            out[key] = V2_REF_PREFIX + value
        else:
            out[key] = _to_v2(value)
    return out


# ---------------------------------------------------------------------------------------------
# documents

_INFO = {"title": "Kubernetes", "version": "unversioned"}
_BEARER = {
    "type": "apiKey",
    "name": "authorization",
    "in": "header",
    "description": "Bearer Token authentication",
}


def openapi_v3_group_version(
    catalogue: Catalogue, group: str, version: str
) -> dict[str, Any] | None:
    """The OpenAPI 3.0 document of one group-version, or None if it is not served."""
    resources = catalogue.in_group_version(group, version)
    if not resources:
        return None
    neutral = _neutral_paths(resources)
    paths: dict[str, Any] = {}
    for path, item in neutral.items():
        rendered: dict[str, Any] = {op["method"]: _v3_operation(op) for op in item["ops"]}
        rendered["parameters"] = [_v3_parameter(p) for p in item["params"]]
        paths[path] = rendered
    schemas = _closure(_path_refs(neutral), _catalogue_schemas(catalogue))
    return {
        "openapi": "3.0.0",
        "info": dict(_INFO),
        "paths": paths,
        "components": {
            "schemas": {name: _to_v3(schema) for name, schema in schemas.items()},
            "securitySchemes": {"BearerToken": dict(_BEARER)},
        },
        "security": [{"BearerToken": []}],
    }


def _index(hashes: dict[tuple[str, str], str]) -> dict[str, Any]:
    paths: dict[str, dict[str, str]] = {}
    for (group, version), content_hash in hashes.items():
        key = group_version_path(group, version)
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={content_hash}"}
    return {"paths": dict(sorted(paths.items()))}


def openapi_v3_index(catalogue: Catalogue) -> dict[str, Any]:
    """GET /openapi/v3: each group-version's document, addressed with its content hash."""
    hashes: dict[tuple[str, str], str] = {}
    for group, version in _group_versions(catalogue):
        document = openapi_v3_group_version(catalogue, group, version)
        if document is not None:
            hashes[(group, version)] = etag(document)
    return _index(hashes)


def openapi_v2(catalogue: Catalogue) -> dict[str, Any]:
    """GET /openapi/v2 as Swagger 2.0 JSON, from the same schemas and paths as v3."""
    neutral = _neutral_paths(list(catalogue.resources))
    paths: dict[str, Any] = {}
    for path, item in neutral.items():
        rendered: dict[str, Any] = {op["method"]: _v2_operation(op) for op in item["ops"]}
        rendered["parameters"] = [_v2_parameter(p) for p in item["params"]]
        paths[path] = rendered
    schemas = _closure(_path_refs(neutral), _catalogue_schemas(catalogue))
    return {
        "swagger": "2.0",
        "info": dict(_INFO),
        "paths": paths,
        "definitions": {name: _to_v2(schema) for name, schema in schemas.items()},
        "securityDefinitions": {"BearerToken": dict(_BEARER)},
        "security": [{"BearerToken": []}],
    }


# ---------------------------------------------------------------------------------------------
# serialisation and caching


def serialize(document: dict[str, Any]) -> bytes:
    """Canonical JSON bytes of a document; what is served and what etag() hashes."""
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def etag(document: dict[str, Any] | bytes) -> str:
    """Upper-case hex SHA-512 of the serialized document, as kube-openapi computes it.

    The same value goes in the index's `?hash=` and in the ETag header (quoted there).
    """
    body = document if isinstance(document, bytes) else serialize(document)
    return hashlib.sha512(body).hexdigest().upper()


class OpenAPIDocuments:
    """Every OpenAPI document of one catalogue, serialized once on first use.

    The catalogue does not change while a server runs, so the bytes and their ETags are
    computed once and served from here; kubectl caches them by `?hash=`.
    """

    def __init__(self, catalogue: Catalogue) -> None:
        self._catalogue = catalogue
        self._v2: tuple[bytes, str] | None = None
        self._index: tuple[bytes, str] | None = None
        self._group_versions: dict[tuple[str, str], tuple[bytes, str] | None] = {}

    def v2(self) -> tuple[bytes, str]:
        """(body, etag) of /openapi/v2."""
        if self._v2 is None:
            body = serialize(openapi_v2(self._catalogue))
            self._v2 = (body, etag(body))
        return self._v2

    def v3_index(self) -> tuple[bytes, str]:
        """(body, etag) of /openapi/v3."""
        if self._index is None:
            # Hash the very bytes this object serves, so `?hash=` always matches the ETag.
            hashes = {}
            for group, version in _group_versions(self._catalogue):
                served = self.v3_group_version(group, version)
                if served is not None:
                    hashes[(group, version)] = served[1]
            body = serialize(_index(hashes))
            self._index = (body, etag(body))
        return self._index

    def v3_group_version(self, group: str, version: str) -> tuple[bytes, str] | None:
        """(body, etag) of /openapi/v3/api/v1 or /openapi/v3/apis/<group>/<version>."""
        key = (group, version)
        if key not in self._group_versions:
            document = openapi_v3_group_version(self._catalogue, group, version)
            if document is None:
                self._group_versions[key] = None
            else:
                body = serialize(document)
                self._group_versions[key] = (body, etag(body))
        return self._group_versions[key]

    def v3_path(self, path: str) -> tuple[bytes, str] | None:
        """Look up by the index key ("api/v1", "apis/apps/v1"); None if unknown."""
        parsed = parse_group_version_path(path)
        if parsed is None:
            return None
        return self.v3_group_version(*parsed)
