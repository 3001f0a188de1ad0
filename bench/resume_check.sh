#!/usr/bin/env bash
# Same-seed determinism and kill -9 + --resume on the real quick config.
# Usage: bash bench/resume_check.sh   (about 5 minutes on 2 cores; prints True twice when both hold)
set -u
W="${TMPDIR:-/tmp}/stancekit_resume_check"
cd "$(dirname "$0")/.."
S=".venv/bin/stancekit train --config configs/quick.yaml --set training.baselines=false"
rm -rf "$W" && mkdir -p "$W"
$S --out $W/full_a > $W/full_a.log 2>&1; echo "full_a rc=$?"
$S --out $W/full_b > $W/full_b.log 2>&1; echo "full_b rc=$?"
$S --out $W/killed > $W/killed.log 2>&1 &
pid=$!
# SIGKILL as soon as the first epoch's checkpoint exists.
while [ ! -f $W/killed.work/checkpoint.pt ]; do sleep 0.5; done
sleep 3; kill -9 $pid; wait $pid; echo "killed rc=$? (137 = SIGKILL); artifact present: $(test -f $W/killed/manifest.json && echo yes || echo no)"
$S --out $W/killed --resume > $W/resumed.log 2>&1; echo "resumed rc=$?"
grep -h "resumed from" $W/resumed.log
W="$W" .venv/bin/python - <<'PY'
import json, os
W = os.environ["W"]
def m(p):
    d = json.load(open(f"{W}/{p}/metrics.json")); d.pop("train_seconds", None); return d
a, b, r = m("full_a"), m("full_b"), m("killed")
print("same seed, two runs: metrics identical:", a == b)
print("killed + resumed vs uninterrupted: metrics identical:", r == a)
for h, v in a["splits"]["test"]["model"]["heads"].items():
    print(f"  test {h} macro-F1 run A {v['macro_f1']:.6f}  run B {b['splits']['test']['model']['heads'][h]['macro_f1']:.6f}  resumed {r['splits']['test']['model']['heads'][h]['macro_f1']:.6f}")
PY
