#!/usr/bin/env bash
# One device call: CUDA tests + the regime map at 10k/20k/60k on the GPU (issue 24).
set -u
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
mkdir -p /usr/share/datasets/fashion-mnist && cp .data/fashion-mnist/*.gz /usr/share/datasets/fashion-mnist/
R=/tmp/r; mkdir -p $R
{ nvidia-smi -L; nproc; python3 -c "import torch, torchvision, art, torchattacks, numpy; print('torch', torch.__version__, 'tv', torchvision.__version__, 'art', art.__version__, 'ta', torchattacks.__version__, 'numpy', numpy.__version__, torch.cuda.get_device_name())"; } > $R/device.txt 2>&1
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 20 > $R/smi.csv 2>&1 &
SMI=$!
PIDS=""
M='import sys; from amun_plugin.cli import main; sys.exit(main())'
B="bench regime_map --device cuda --threads 1 --executor processes"
T=${BENCH_SECONDS:-430}
(AMUN_BENCH_CACHE=/tmp/c60 timeout $T python3 -c "$M" $B --preset fmnist-60k --methods AMUN,l1-Sparse --runs 3 --reference-models 4 --workers 8 --output $R/regime_map-fmnist-60k > $R/60k.log 2>&1; echo "rc $?" >> $R/60k.log) & PIDS="$PIDS $!"
(AMUN_BENCH_CACHE=/tmp/c20 timeout $T python3 -c "$M" $B --preset fmnist-20k --methods AMUN,l1-Sparse --workers 4 --output $R/regime_map-fmnist-20k > $R/20k.log 2>&1; echo "rc $?" >> $R/20k.log) & PIDS="$PIDS $!"
(AMUN_BENCH_CACHE=/tmp/c10 timeout $T python3 -c "$M" $B --preset fmnist-10k --methods AMUN,l1-Sparse --workers 3 --output $R/regime_map-fmnist-10k > $R/10k.log 2>&1; echo "rc $?" >> $R/10k.log) & PIDS="$PIDS $!"
(timeout 300 python3 -m pytest -q -rs -p no:cacheprovider tests/attacks/test_search.py tests/evaluate/test_art_bridge.py tests/test_run_safety.py tests/bench/test_run_folder_safety.py tests/bench/test_newcomer_bench.py tests/test_executors.py > $R/pytest.log 2>&1; echo "rc $?" >> $R/pytest.log) & PIDS="$PIDS $!"
wait $PIDS
kill $SMI 2>/dev/null
tar czf $OUT/runs.tgz -C $R . 
for p in 10 20 60; do tar czf - -C /tmp/c$p --exclude=adversarial . | split -b 15M -d - $OUT/cache$p.tgz.; done
ls -la $OUT; tail -3 $R/*.log
