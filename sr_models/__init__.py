"""Super-resolution networks, degradation, metrics and method registry (pure PyTorch + numpy).

No Django import anywhere in this package: the web side calls `sr_models.methods.get_method`.
"""

import os

# Transparent huge pages for PyTorch's large (2 MB and up) CPU tensors. c10 reads the variable
# once, at the process's first CPU tensor allocation, so it must be set before any tensor exists:
# the web and worker code import sr_models before they make one. Without it, every forward pass
# page-faults its fresh activation buffers 4 KB at a time: SRResNet x4 inference on the CPU runs
# about 25 % faster with it (docs/benchmarks.md). It is inherited by child processes; on a host
# with fragmented memory, huge-page faults can wait for compaction.
# THP_MEM_ALLOC_ENABLE=0 in the environment turns it off.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
