from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AddNetworkRequest(_message.Message):
    __slots__ = ("container_id", "netns", "ifname", "network_name", "k8s_pod_namespace", "k8s_pod_name", "k8s_pod_infra_container_id", "client_version")
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    NETNS_FIELD_NUMBER: _ClassVar[int]
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    NETWORK_NAME_FIELD_NUMBER: _ClassVar[int]
    K8S_POD_NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    K8S_POD_NAME_FIELD_NUMBER: _ClassVar[int]
    K8S_POD_INFRA_CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    netns: str
    ifname: str
    network_name: str
    k8s_pod_namespace: str
    k8s_pod_name: str
    k8s_pod_infra_container_id: str
    client_version: str
    def __init__(self, container_id: _Optional[str] = ..., netns: _Optional[str] = ..., ifname: _Optional[str] = ..., network_name: _Optional[str] = ..., k8s_pod_namespace: _Optional[str] = ..., k8s_pod_name: _Optional[str] = ..., k8s_pod_infra_container_id: _Optional[str] = ..., client_version: _Optional[str] = ...) -> None: ...

class AddNetworkReply(_message.Message):
    __slots__ = ("ipv4_addr", "prefix_length", "gateway", "eni_id", "device_number", "vpc_cidrs")
    IPV4_ADDR_FIELD_NUMBER: _ClassVar[int]
    PREFIX_LENGTH_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    ENI_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    VPC_CIDRS_FIELD_NUMBER: _ClassVar[int]
    ipv4_addr: str
    prefix_length: int
    gateway: str
    eni_id: str
    device_number: int
    vpc_cidrs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, ipv4_addr: _Optional[str] = ..., prefix_length: _Optional[int] = ..., gateway: _Optional[str] = ..., eni_id: _Optional[str] = ..., device_number: _Optional[int] = ..., vpc_cidrs: _Optional[_Iterable[str]] = ...) -> None: ...

class DelNetworkRequest(_message.Message):
    __slots__ = ("container_id", "ifname", "network_name", "k8s_pod_namespace", "k8s_pod_name", "reason", "client_version")
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    NETWORK_NAME_FIELD_NUMBER: _ClassVar[int]
    K8S_POD_NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    K8S_POD_NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CLIENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    ifname: str
    network_name: str
    k8s_pod_namespace: str
    k8s_pod_name: str
    reason: str
    client_version: str
    def __init__(self, container_id: _Optional[str] = ..., ifname: _Optional[str] = ..., network_name: _Optional[str] = ..., k8s_pod_namespace: _Optional[str] = ..., k8s_pod_name: _Optional[str] = ..., reason: _Optional[str] = ..., client_version: _Optional[str] = ...) -> None: ...

class DelNetworkReply(_message.Message):
    __slots__ = ("ipv4_addr", "eni_id")
    IPV4_ADDR_FIELD_NUMBER: _ClassVar[int]
    ENI_ID_FIELD_NUMBER: _ClassVar[int]
    ipv4_addr: str
    eni_id: str
    def __init__(self, ipv4_addr: _Optional[str] = ..., eni_id: _Optional[str] = ...) -> None: ...

class CheckNetworkRequest(_message.Message):
    __slots__ = ("container_id", "ifname", "network_name")
    CONTAINER_ID_FIELD_NUMBER: _ClassVar[int]
    IFNAME_FIELD_NUMBER: _ClassVar[int]
    NETWORK_NAME_FIELD_NUMBER: _ClassVar[int]
    container_id: str
    ifname: str
    network_name: str
    def __init__(self, container_id: _Optional[str] = ..., ifname: _Optional[str] = ..., network_name: _Optional[str] = ...) -> None: ...

class CheckNetworkReply(_message.Message):
    __slots__ = ("ipv4_addr", "eni_id")
    IPV4_ADDR_FIELD_NUMBER: _ClassVar[int]
    ENI_ID_FIELD_NUMBER: _ClassVar[int]
    ipv4_addr: str
    eni_id: str
    def __init__(self, ipv4_addr: _Optional[str] = ..., eni_id: _Optional[str] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EniStatus(_message.Message):
    __slots__ = ("eni_id", "device_number", "primary_ip", "cidrs", "assigned")
    ENI_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_IP_FIELD_NUMBER: _ClassVar[int]
    CIDRS_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_FIELD_NUMBER: _ClassVar[int]
    eni_id: str
    device_number: int
    primary_ip: str
    cidrs: _containers.RepeatedScalarFieldContainer[str]
    assigned: int
    def __init__(self, eni_id: _Optional[str] = ..., device_number: _Optional[int] = ..., primary_ip: _Optional[str] = ..., cidrs: _Optional[_Iterable[str]] = ..., assigned: _Optional[int] = ...) -> None: ...

class StatusReply(_message.Message):
    __slots__ = ("node_name", "instance_type", "max_pods", "prefix_delegation", "vpc_cidr", "gateway", "total_ips", "assigned_ips", "cooldown_ips", "available_ips", "max_enis", "enis")
    NODE_NAME_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    MAX_PODS_FIELD_NUMBER: _ClassVar[int]
    PREFIX_DELEGATION_FIELD_NUMBER: _ClassVar[int]
    VPC_CIDR_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    TOTAL_IPS_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_IPS_FIELD_NUMBER: _ClassVar[int]
    COOLDOWN_IPS_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_IPS_FIELD_NUMBER: _ClassVar[int]
    MAX_ENIS_FIELD_NUMBER: _ClassVar[int]
    ENIS_FIELD_NUMBER: _ClassVar[int]
    node_name: str
    instance_type: str
    max_pods: int
    prefix_delegation: bool
    vpc_cidr: str
    gateway: str
    total_ips: int
    assigned_ips: int
    cooldown_ips: int
    available_ips: int
    max_enis: int
    enis: _containers.RepeatedCompositeFieldContainer[EniStatus]
    def __init__(self, node_name: _Optional[str] = ..., instance_type: _Optional[str] = ..., max_pods: _Optional[int] = ..., prefix_delegation: _Optional[bool] = ..., vpc_cidr: _Optional[str] = ..., gateway: _Optional[str] = ..., total_ips: _Optional[int] = ..., assigned_ips: _Optional[int] = ..., cooldown_ips: _Optional[int] = ..., available_ips: _Optional[int] = ..., max_enis: _Optional[int] = ..., enis: _Optional[_Iterable[_Union[EniStatus, _Mapping]]] = ...) -> None: ...
