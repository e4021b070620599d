"""Bearer-token verification: a token's first check (EdDSA signature, claims) against its next
ones, which the verifier remembers (services/common/jwks.py), in the same run.

Run: .venv/bin/python -m bench.token_verify [--tokens 2000] [--repeats 20]

Each police client sends its token with every request for 15 minutes, so all but its first
request can skip the signature check. Prints checks per second and CPU per check for both,
and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime

from services.common.jwks import TokenVerifier, parse_jwks
from services.common.security import Principal
from services.identity.keys import Keyset, generate_key
from services.identity.tokens import issue_token


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=2000, help="distinct tokens")
    parser.add_argument("--repeats", type=int, default=20, help="checks of each remembered one")
    return parser.parse_args()


async def main() -> None:
    args = parse_args()
    keyset = Keyset.from_setting(json.dumps([generate_key()]))
    police = Principal(subject="wmp-bench", kind="client", role="police",
                       scopes=frozenset({"incidents:write"}), force_code="WMP")
    tokens = [issue_token(keyset, police, issuer="daybreak", now=datetime.now(UTC), ttl_s=900,
                          sid=f"s{i}") for i in range(args.tokens)]
    verifier = TokenVerifier(audience="ingest", issuer="daybreak",
                             static=parse_jwks(json.dumps(keyset.jwks())),
                             remember=args.tokens)
    start, cpu = time.perf_counter(), time.process_time()
    for token in tokens:
        await verifier.verify(token)
    first = (time.perf_counter() - start, time.process_time() - cpu, len(tokens))
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.repeats):
        for token in tokens:
            await verifier.verify(token)
    again = (time.perf_counter() - start, time.process_time() - cpu,
             len(tokens) * args.repeats)
    for label, (wall, used, n) in (("first check (signature)", first),
                                   ("remembered", again)):
        print(f"{label:<24} {n / wall:>12,.0f} checks/s  {used / n * 1e6:>8.1f} us CPU each")
    print(f"remembered / first: {first[1] / first[2] / (again[1] / again[2]):.1f}x less CPU "
          "per check")


if __name__ == "__main__":
    asyncio.run(main())
