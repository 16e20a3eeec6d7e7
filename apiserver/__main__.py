"""`python -m apiserver --etcd-servers ... --secure-port ...`"""

from __future__ import annotations

import asyncio
import logging
import sys

from apiserver.options import parse_args
from apiserver.server import run


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(run(options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
