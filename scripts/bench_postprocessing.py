"""Time the bundle's inference on one CT, network against everything after it, for two versions of
``configs/inference.json`` ("before" and "after"), through the bundle's own components and through
MONAI Label's ``BundleInferTask``, and measure how well the two segmentations agree.

Run it in the MONAI Label environment (``scripts/monailabel_env.sh``), from the repository root::

    git show <old commit>:bundle/configs/inference.json > /tmp/inference_before.json
    PYTHONPATH=$PWD <venv>/bin/python scripts/bench_postprocessing.py --image <DICOM folder or NIfTI> \\
        --weights <model.pt> --before /tmp/inference_before.json --after bundle/configs/inference.json \\
        --output docs/monailabel_postprocessing.json

Nothing is written into the repository except ``--output``; the segmentations go to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from monai.bundle import ConfigParser
from monai.transforms import LoadImage

REPO = Path(__file__).resolve().parents[1]
NUM_CLASSES = 5


def _cpu() -> dict:
    info = {"threads": torch.get_num_threads(), "load_average": os.getloadavg()}
    try:
        text = Path("/proc/cpuinfo").read_text()
        info["model"] = next(
            line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")
        )
        flags = next(line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags"))
        info["flags"] = sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "sse4")))
        info["cores"] = os.cpu_count()
    except (OSError, StopIteration):
        pass
    return info


def _bundle(config: Path, weights: Path, root: Path) -> Path:
    """A bundle folder as MONAI Label wants it: configs (this inference.json) and models/model.pt."""
    shutil.copytree(
        REPO / "bundle" / "configs", root / "configs", ignore=shutil.ignore_patterns("monailabel_train.json")
    )
    shutil.copy(config, root / "configs" / "inference.json")
    (root / "models").mkdir()
    shutil.copy(weights, root / "models" / "model.pt")
    record = weights.with_name(weights.stem + ".recipe.json")  # the model's recipe, when it has one
    if record.is_file():
        shutil.copy(record, root / "models" / "model.recipe.json")
    return root


def bundle_path(root: Path, image: str, out_dir: Path) -> tuple[dict, np.ndarray]:
    """The evaluator's steps, timed: pre-processing, the network's sliding-window pass, then each
    post-processing transform (inverting, discretising, writing) of ``configs/inference.json``."""
    parser = ConfigParser()
    parser.read_config(str(root / "configs" / "inference.json"))
    parser.update(
        {"bundle_root": str(root), "device": "$torch.device('cpu')", "pred_dir": str(out_dir), "overwrite": True}
    )
    network = parser.get_parsed_content("network")
    network.load_state_dict(torch.load(root / "models" / "model.pt", map_location="cpu", weights_only=True))
    network.eval()
    pre = parser.get_parsed_content("preprocessing")
    inferer = parser.get_parsed_content("inferer")
    post = parser.get_parsed_content("postprocessing")
    t0 = time.perf_counter()
    data = pre({"image": image})
    t1 = time.perf_counter()
    with torch.no_grad():
        data["pred"] = inferer(data["image"][None], network)[0]
    t2 = time.perf_counter()
    steps = []
    for t in post.transforms:
        s = time.perf_counter()
        data = t(data)
        steps.append({"transform": type(t).__name__, "s": round(time.perf_counter() - s, 3)})
    t3 = time.perf_counter()
    seg = np.asarray(LoadImage(image_only=True)(next(iter(out_dir.glob("*_seg.nii.gz")))))
    timing = {
        "pre_s": round(t1 - t0, 3),
        "network_s": round(t2 - t1, 3),
        "after_network_s": round(t3 - t2, 3),
        "post_steps": steps,
    }
    return timing, seg


def monailabel_path(root: Path, image: str) -> tuple[dict, np.ndarray]:
    """MONAI Label's own ``BundleInferTask`` (pre-transforms one by one over its request, the
    inferer, the bundle's post-transforms without writers, ``Restored``, its writer)."""
    from monailabel.tasks.infer.bundle import BundleInferTask

    task = BundleInferTask(str(root), conf={})
    label, result = task({"image": image, "device": "cpu", "result_extension": ".nii.gz"})
    lat = result["latencies"]
    seg = np.asarray(LoadImage(image_only=True)(label))
    os.remove(label)
    after = lat["invert"] + lat["post"] + lat["write"]
    return {"pre_s": lat["pre"], "network_s": lat["infer"], "after_network_s": round(after, 3), "latencies": lat}, seg


def agreement(a: np.ndarray, b: np.ndarray) -> dict:
    a, b = np.squeeze(a).astype(np.uint8), np.squeeze(b).astype(np.uint8)
    out = {"shape": list(a.shape), "voxel_agreement": float((a == b).mean())}
    fg = (a > 0) | (b > 0)
    out["foreground_voxel_agreement"] = float((a[fg] == b[fg]).mean()) if fg.any() else 1.0
    out["dice_per_class"] = {}
    for c in range(1, NUM_CLASSES):
        sa, sb = a == c, b == c
        denom = sa.sum() + sb.sum()
        out["dice_per_class"][str(c)] = None if denom == 0 else float(2 * (sa & sb).sum() / denom)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--image", required=True, help="a DICOM series folder or a NIfTI file")
    ap.add_argument("--weights", required=True, help="a models/model.pt for the bundle's network")
    ap.add_argument("--before", required=True, help="the old configs/inference.json")
    ap.add_argument("--after", default=str(REPO / "bundle" / "configs" / "inference.json"))
    ap.add_argument("--output", required=True, help="JSON file to write")
    ap.add_argument("--no-monailabel", action="store_true", help="skip the MONAI Label path")
    args = ap.parse_args()

    result: dict = {
        "command": "scripts/bench_postprocessing.py "
        + " ".join(f"--{k} <{k}>" for k in ("image", "weights", "before", "after", "output")),
        "image_shape": list(LoadImage(image_only=True)(args.image).shape),
        "cpu": _cpu(),
        "versions": {"torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()},
        "git_commit": subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
    }
    import monai

    result["versions"]["monai"] = monai.__version__
    segs: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, config in (("before", args.before), ("after", args.after)):
            root = _bundle(Path(config), Path(args.weights), Path(tmp) / name / "model" / "attention_unet_abdominal_ct")
            result[f"bundle_{name}"], segs[f"bundle_{name}"] = bundle_path(root, args.image, Path(tmp) / name / "out")
            print(name, "bundle", json.dumps(result[f"bundle_{name}"]), flush=True)
            if not args.no_monailabel:
                import monailabel

                result["versions"]["monailabel"] = monailabel.__version__
                result[f"monailabel_{name}"], segs[f"monailabel_{name}"] = monailabel_path(root, args.image)
                print(name, "monailabel", json.dumps(result[f"monailabel_{name}"]), flush=True)
    result["agreement_bundle_before_after"] = agreement(segs["bundle_before"], segs["bundle_after"])
    if not args.no_monailabel:
        result["agreement_monailabel_before_after"] = agreement(segs["monailabel_before"], segs["monailabel_after"])
        result["agreement_bundle_monailabel_after"] = agreement(segs["bundle_after"], segs["monailabel_after"])
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k.startswith("agreement")}, indent=1))


if __name__ == "__main__":
    main()
