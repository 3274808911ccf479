"""Run jgd's benchmark harness from a checkout: ``python benchmarks/bench.py --quick``.

The same as the ``jgd bench`` console command (``jgd.bench.main``); see
``benchmarks/README.md`` for what is measured and the recorded results.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jgd.bench import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
