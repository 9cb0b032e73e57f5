"""Super-resolution networks, degradation, metrics and method registry (pure PyTorch + numpy).

No Django import anywhere in this package: the web side calls `sr_models.methods.get_method`.
"""
