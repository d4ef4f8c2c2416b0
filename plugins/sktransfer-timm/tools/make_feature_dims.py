"""Regenerate src/sktransfer_timm/_feature_dims.json for the installed timm version.

Listing every timm backbone with its feature size would otherwise build ~1,400
architectures on the meta device (minutes). Run after upgrading timm:

    python plugins/sktransfer-timm/tools/make_feature_dims.py
"""

import json
import os
import sys
import time
import warnings

import timm
from sktransfer_timm.plugin import _TABLE_FILE, meta_feature_dim

warnings.filterwarnings("ignore")
start = time.time()
dims, failed = {}, {}
for arch in timm.list_models():
    try:
        dims[arch] = meta_feature_dim(arch)
    except Exception as exc:  # a few architectures need real inputs; they stay lazy
        failed[arch] = repr(exc)[:120]
out = sys.argv[1] if len(sys.argv) > 1 else _TABLE_FILE
with open(out, "w") as f:
    json.dump({"timm_version": timm.__version__, "feature_dims": dims}, f, indent=0, sort_keys=True)
print(f"{len(dims)} architectures in {time.time() - start:.0f}s; {len(failed)} left lazy: {sorted(failed)[:10]}")
print(os.path.abspath(out))
