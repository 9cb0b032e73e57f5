"""Super-resolution networks, degradation, metrics and method registry (pure PyTorch + numpy).

No Django import anywhere in this package: the web side calls `sr_models.methods.get_method`.
"""

import os

# Transparent huge pages for PyTorch's large CPU tensors (read by c10 at the first allocation of
# 2 MB or more, so it is set before anything here imports torch). Without it, every forward pass
# page-faults its fresh activation buffers 4 KB at a time: SRResNet x4 inference on the CPU runs
# about 25 % faster with it (docs/benchmarks.md). THP_MEM_ALLOC_ENABLE=0 in the environment
# turns it off.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
