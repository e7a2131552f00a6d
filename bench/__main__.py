"""``python -m bench`` runs every benchmark; ``python -m bench NAME [flags]`` runs one
(``python -m bench NAME --help`` lists its flags). Exits 1 when a check failed."""

import importlib
import sys

BENCHES = ("hot_sku", "order_create", "expiry", "ingest", "relay", "pos_feed", "pos_e2e", "aftersales", "sold_out", "board", "dashboard")


def run(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        print("benchmarks:", ", ".join(BENCHES))
        return 0
    if argv and not argv[0].startswith("-"):
        name, rest = argv[0], argv[1:]
        if name not in BENCHES:
            print(f"unknown benchmark {name!r}; choose from {', '.join(BENCHES)}", file=sys.stderr)
            return 2
        names = [name]
    else:
        names, rest = list(BENCHES), argv
        if rest:
            print("flags apply to one benchmark: python -m bench NAME [flags]", file=sys.stderr)
            return 2
    ok = True
    for name in names:
        result = importlib.import_module(f"bench.{name}").main(rest)
        ok = ok and bool(result.get("ok"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
