"""Poll a run's log.jsonl and write (elapsed wall seconds, step, valid postnet L1) at each new validation."""

import json
import sys
import time
from pathlib import Path

out, csv, limit = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
start, seen = time.time(), set()
csv.write_text("seconds,step,valid_postnet_l1,valid_lagrangian\n")
while time.time() - start < limit:
    time.sleep(5)
    log = out / "log.jsonl"
    if not log.is_file():
        continue
    for line in log.read_text().splitlines():
        r = json.loads(line)
        if "valid/postnet_l1" in r and r["step"] not in seen:
            seen.add(r["step"])
            with csv.open("a") as f:
                f.write(
                    f"{time.time() - start:.0f},{r['step']},{r['valid/postnet_l1']:.1f},{r['valid/lagrangian']:.1f}\n"
                )
