"""`python -m sync_assets_sandbox`: serve the sandboxes on loopback, as `sync-assets sandbox` does.

The same options and defaults (`--host`, `--port`, `--seed`, `--athletes`, `--sizes`,
`--list-order`); Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import NoReturn

from sync_assets_sandbox import DEFAULT_LIST_ORDER, LIST_ORDERS
from sync_assets_sandbox.server import serve


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in one line (the usage is one `--help` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see `{self.prog} --help`)\n")


def build_parser(prog: str = "python -m sync_assets_sandbox") -> argparse.ArgumentParser:
    """The options (`sync-assets sandbox` parses the same ones with this parser)."""
    parser = _Parser(
        prog=prog,
        description="serve the Strava-compatible sandbox (and the weather APIs) on loopback",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8710)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--athletes", type=int, default=2)
    parser.add_argument("--sizes", help="comma-separated activity counts, one per athlete")
    parser.add_argument(
        "--list-order",
        choices=sorted(LIST_ORDERS),
        default=DEFAULT_LIST_ORDER,
        help="how GET /athlete/activities orders its pages (Strava documents no order): "
        + "; ".join(f"{k}: {v}" for k, v in LIST_ORDERS.items()),
    )
    return parser


def main(argv: list[str] | None = None, prog: str = "python -m sync_assets_sandbox") -> int:
    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else None
        serve(
            args.host,
            args.port,
            seed=args.seed,
            athletes=args.athletes,
            sizes=sizes,
            list_order=args.list_order,
        )
    except ValueError as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    except OSError as err:  # the port is taken, the host is not ours...
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
