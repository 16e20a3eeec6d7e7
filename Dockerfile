# kubelite/kubelite the usual way, for machines that can pull from a registry:
#
#   docker build -t kubelite/kubelite:latest .
#
# kubelite itself needs no registry: `make images` (hack/images.sh) assembles the same image
# from this machine's interpreter and venv with `docker import`. Both images run the same
# way: `docker run --rm kubelite/kubelite:latest kubelite version`; add-on pods give their
# `command` (for DNS: kubelite dns --port 53 ...), see dns/manifests/kube-dns.yaml.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Only what the package is built from: no .venv, tests or data.
COPY pyproject.toml README.md ./
COPY api/ api/
COPY client/ client/
COPY apiserver/ apiserver/
COPY scheduler/ scheduler/
COPY controller_manager/ controller_manager/
COPY kubelet/ kubelet/
COPY cni/ cni/
COPY kube_proxy/ kube_proxy/
COPY dns/ dns/
COPY kubelite/ kubelite/
COPY proto/ proto/
RUN pip install . && rm -rf /src

WORKDIR /
CMD ["kubelite", "version"]
