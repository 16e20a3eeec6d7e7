"""`python -m scheduler --kubeconfig ...`"""

from __future__ import annotations

import asyncio
import logging
import sys

from scheduler.app import main_async
from scheduler.options import parse_args


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if options.verbosity >= 2:
        # -v=2 and up: a line per pod scheduled (upstream logs these at V(2)).
        logging.getLogger("scheduler").setLevel(logging.DEBUG)
    return asyncio.run(main_async(options))


if __name__ == "__main__":
    sys.exit(main())
