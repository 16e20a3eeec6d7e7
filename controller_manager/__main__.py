"""`python -m controller_manager --kubeconfig ...`"""

from __future__ import annotations

import asyncio
import logging
import sys

from controller_manager.app import main_async
from controller_manager.options import parse_args


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return asyncio.run(main_async(options))


if __name__ == "__main__":
    sys.exit(main())
