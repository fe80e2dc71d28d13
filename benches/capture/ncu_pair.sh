#!/usr/bin/env bash
# Captures the NCU CSV fixture pair used by tests/profile_ncu.rs.
# Usage (on a GPU machine): OUT=dir bash benches/capture/ncu_pair.sh
set -euo pipefail
out="${OUT:?set OUT to an output folder}"
here="$(cd "$(dirname "$0")" && pwd)"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader > "$out/device.txt" || true
ncu --version > "$out/ncu_version.txt" 2>&1 || true
for variant in baseline candidate; do
  # Skip the first (warm-up/JIT) iteration; profile the last two of each kernel.
  ncu --target-processes all \
      --kernel-name regex:'rmsnorm_kernel|elementwise_kernel' --launch-skip 2 --launch-count 4 \
      --section SpeedOfLight --section Occupancy --section LaunchStats \
      --section WarpStateStats --section MemoryWorkloadAnalysis --section SchedulerStats \
      -f -o "$out/$variant" python "$here/ncu_pair.py" "$variant" > "$out/${variant}_run.log" 2>&1
  ncu --import "$out/$variant.ncu-rep" --csv --page details > "$out/${variant}_details.csv"
  ncu --import "$out/$variant.ncu-rep" --csv --page raw > "$out/${variant}_raw.csv"
  rm -f "$out/$variant.ncu-rep"
done
ls -la "$out"
