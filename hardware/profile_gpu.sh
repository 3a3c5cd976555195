#!/usr/bin/env bash
# Profile this machine's CUDA GPU in one go and check the CUDA paths, for the profile to be committed
# under nas/hardware/profiles/ like any other:
#
#     bash hardware/profile_gpu.sh            # MINUTES=3 SPACES="resnet mobilenet vit" PYTHON=python3
#
# It uses an existing Python with a CUDA build of torch (a GPU machine's own; the project's CPU venv
# has none), runs the CUDA tests, profiles the kernels of the given spaces at batch 1 and 32 (CUDA
# events, warm-up, median), and times a few whole models. Files also go to $OUT when it is set.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
MINUTES=${MINUTES:-3}
SPACES=${SPACES:-resnet mobilenet vit}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

"$PY" - <<'EOF'
import sys, torch
if not torch.cuda.is_available():
    sys.exit("no CUDA GPU visible to torch " + torch.__version__ + "; nothing to profile")
print("GPU:", torch.cuda.get_device_name(0), "| torch", torch.__version__, "| CUDA", torch.version.cuda)
EOF

# The CUDA paths the CPU test run skips: event timing, identity, the cast quantization backend.
"$PY" -m pytest -q -p no:cacheprovider -m cuda tests/hardware tests/compress || echo "CUDA tests FAILED"

args=()
for s in $SPACES; do args+=(--space "search_spaces.$s:space"); done
db=$(mktemp -d)/gpu.db
export NAS_PROFILES_DIR="$PWD/nas/hardware/profiles"  # this profile is for the repository: commit it
"$PY" -c "from nas.cli import main; raise SystemExit(main())" profile --device cuda:0 "${args[@]}" \
    --samples 8 --batch 1 --batch 32 --time-budget "$MINUTES" --db "sqlite:///$db"

# A held-out check of the fresh profile: predicted against measured for a few sampled models.
"$PY" - <<'EOF'
import importlib, os, shutil
from nas.hardware import measure_latency
from nas.run.latency_source import profile_path
from nas.predictors import LatencyPredictor

path = profile_path("cuda:0")
pred = LatencyPredictor.load(path)
print(f"profile {path}")
print("| space | arch | batch | predicted ms | measured ms |")
for name in os.environ.get("SPACES", "resnet mobilenet vit").split():
    sp = importlib.import_module(f"search_spaces.{name}").space()
    for seed in (1000, 1001):
        arch = sp.sample(seed)
        model = sp.build(arch)
        for b in (1, 32):
            p = pred.predict(model, sp.input_shape, b)
            m = measure_latency(model, sp.input_shape, batch_size=b, device="cuda:0")
            print(f"| {name} | {arch.id[:8]} | {b} | {p:.3f} | {m:.3f} |")
if os.environ.get("OUT"):
    shutil.copy(path, os.environ["OUT"])
EOF
