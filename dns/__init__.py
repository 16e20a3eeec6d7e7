"""kubelite's cluster DNS add-on (the kube-dns Service): answers the names of the Kubernetes
DNS spec from Services and EndpointSlices, forwards every other name upstream.

    wire.py      the DNS message codec (RFC 1035 + EDNS0), no third-party library
    records.py   the cluster zone: which records exist, from the informers' stores
    handler.py   one query to one answer: errors, EDNS, zone or upstream, truncation
    forward.py   the upstream client (UDP, TCP on truncation, next server on failure)
    cache.py     the cache of upstream answers (positive and negative, single flight)
    server.py    the UDP and TCP sockets
    health.py    /health and /ready over HTTP
    app.py       informers + server + health server, and their lifetime
    addon.py     the add-on's Deployment and Service (also dns/manifests/kube-dns.yaml)
"""
