"""Prediction throughput of ``predict_proba`` against a raw ``torch.inference_mode`` loop.

    python benchmarks/predict_throughput.py [--n 1000] [--backbone efficientnet_lite0] [--image-size 224]

The raw loop runs the very module sktransfer fitted, over the same images with the
same preprocessing and batch size, under ``torch.inference_mode``.  Each side runs
three times, interleaved, and the fastest run of each is compared.  Target:
sktransfer throughput / raw throughput >= 0.95.  Saves results/predict_throughput-<device>.json.
"""

from __future__ import annotations

import argparse
import time

from _common import digits_images, save_result


def raw_loop(module, X, spec, image_size, batch_size, device):
    import numpy as np
    import torch
    from torch.utils.data import DataLoader, Dataset
    from torchvision.transforms import InterpolationMode, v2

    prep = spec.preprocessing
    resize = round(image_size * (prep.resize_size or prep.input_size) / prep.input_size)
    transform = v2.Compose([
        v2.Resize(resize, interpolation=InterpolationMode(prep.interpolation), antialias=True),
        v2.CenterCrop(image_size),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(prep.mean, prep.std),
    ])

    class Images(Dataset):
        def __len__(self):
            return len(X)

        def __getitem__(self, i):
            img = torch.from_numpy(np.clip(np.rint(X[i] * 255), 0, 255).astype(np.uint8))
            return transform(img.expand(3, -1, -1))

    module.eval()
    out = []
    with torch.inference_mode():
        for xb in DataLoader(Images(), batch_size=batch_size):
            out.append(torch.softmax(module(xb.to(device)).float(), dim=1).cpu())
    return torch.cat(out).numpy()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    import numpy as np

    from sktransfer import TransferClassifier

    X, y = digits_images(args.n)
    # A fine-tuned model (the backbone trained, so prediction runs the whole network).
    clf = TransferClassifier(
        args.backbone, strategy="partial", trainable_blocks=2, image_size=args.image_size, max_epochs=1,
        batch_size=args.batch_size, random_state=0,
    ).fit(X[:64], y[:64])
    module, device = clf.net_.module_, clf.device_
    ours, raw = [], []
    for _ in range(3):
        start = time.perf_counter()
        p_ours = clf.predict_proba(X)
        ours.append(time.perf_counter() - start)
        start = time.perf_counter()
        p_raw = raw_loop(module, X, clf.spec_, args.image_size, args.batch_size, device)
        raw.append(time.perf_counter() - start)
    np.testing.assert_allclose(p_ours, p_raw, rtol=1e-4, atol=1e-5)  # the same computation
    ratio = min(raw) / min(ours)  # throughput ratio = inverse time ratio
    print(f"predict_proba on {len(X)} images at {args.image_size}px, {args.backbone} on {device}:")
    print(f"  sktransfer {len(X) / min(ours):.1f} images/s (runs: {', '.join(f'{t:.2f}s' for t in ours)})")
    print(f"  raw loop   {len(X) / min(raw):.1f} images/s (runs: {', '.join(f'{t:.2f}s' for t in raw)})")
    print(f"throughput ratio sktransfer / raw = {ratio:.3f} (target >= 0.95)")
    save_result("predict_throughput", {
        "backbone": args.backbone, "n_images": len(X), "image_size": args.image_size,
        "batch_size": args.batch_size, "device": str(device),
        "sktransfer_s": ours, "raw_s": raw,
        "sktransfer_images_per_s": len(X) / min(ours), "raw_images_per_s": len(X) / min(raw),
        "ratio": ratio, "target_ratio": 0.95,
    })


if __name__ == "__main__":
    main()
