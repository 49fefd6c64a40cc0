"""``python -m bastion.sample --port 9000``: run the sample upstream on loopback."""

from __future__ import annotations

import argparse

import uvicorn

from bastion.sample.orchestrator import create_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bastion.sample")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    uvicorn.run(
        create_app(),
        host=args.host,
        port=args.port,
        log_level="warning",
        proxy_headers=False,
        access_log=False,
    )


if __name__ == "__main__":
    main()
