"""``make bench``: every benchmark of this folder, one after the other, on the real PostgreSQL.

Each benchmark builds its own scratch database and prints its figures; the README quotes
them as ratios measured in one run on one machine. Nothing here fails on speed.
"""

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# In the order the README presents them.
BENCHMARKS = ["ledger_post", "anchor", "jobs", "import_members", "request_cost", "load"]


def main(argv: list[str]) -> int:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    chosen = argv or [name for name in BENCHMARKS if (ROOT / "bench" / f"{name}.py").exists()]
    failed = []
    for name in chosen:
        print(f"\n=== bench/{name}.py ===", flush=True)
        started = time.perf_counter()
        # A process each: every benchmark sets Django up on its own scratch database, and one
        # that breaks must not hide the others' figures.
        result = subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=ROOT, check=False)
        if result.returncode:
            failed.append(name)
            print(f"bench/{name}.py failed (exit {result.returncode})", flush=True)
        print(f"=== bench/{name}.py took {time.perf_counter() - started:.0f} s ===", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
