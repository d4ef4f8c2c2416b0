"""One fine-tuning epoch through sktransfer against a hand-written PyTorch loop.

    python benchmarks/finetune_epoch.py [--n 256] [--backbone efficientnet_lite0] [--image-size 160]
                                        [--epochs 4] [--batch-size 32]

Both sides train the same pretrained backbone plus a linear head with AdamW, on the
same images, preprocessing and batch size, for ``--epochs`` epochs; the per-epoch
times after the first (warm-up) epoch are compared by their medians.  Target:
sktransfer / hand-written <= 1.10.  Saves results/finetune_epoch-<device>.json.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import digits_images, save_result


def hand_written_epochs(spec, X, y, args, device):
    """The loop a PyTorch user would write: Dataset, DataLoader, AdamW, cross-entropy."""
    import numpy as np
    import torch
    import torch.nn as nn
    from torch.utils.data import DataLoader, Dataset
    from torchvision.transforms import InterpolationMode, v2

    prep = spec.preprocessing
    resize = round(args.image_size * (prep.resize_size or prep.input_size) / prep.input_size)
    transform = v2.Compose([
        v2.Resize(resize, interpolation=InterpolationMode(prep.interpolation), antialias=True),
        v2.CenterCrop(args.image_size),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(prep.mean, prep.std),
    ])

    class Images(Dataset):
        def __len__(self):
            return len(X)

        def __getitem__(self, i):
            img = torch.from_numpy(np.clip(np.rint(X[i] * 255), 0, 255).astype(np.uint8))
            return transform(img.expand(3, -1, -1)), int(y[i])

    torch.manual_seed(0)
    backbone = spec.build(pretrained=True)
    model = nn.Sequential(backbone, nn.Linear(spec.get_feature_dim(), 10)).to(device)
    optimizer = torch.optim.AdamW(
        [{"params": model[0].parameters(), "lr": 1e-4}, {"params": model[1].parameters(), "lr": 1e-3}],
        weight_decay=0.01,
    )
    loader = DataLoader(Images(), batch_size=args.batch_size, shuffle=True)
    loss_fn = nn.CrossEntropyLoss()
    durations = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        model.train()
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            optimizer.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            optimizer.step()
        durations.append(time.perf_counter() - start)
    return durations


def sktransfer_epochs(X, y, args):
    from sktransfer import TransferClassifier

    clf = TransferClassifier(
        args.backbone, strategy="full", image_size=args.image_size, max_epochs=args.epochs,
        batch_size=args.batch_size, lr=1e-3, backbone_lr=1e-4, weight_decay=0.01, random_state=0,
    ).fit(X, y)
    return list(clf.net_.history[:, "dur"]), str(clf.device_)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--backbone", default="efficientnet_lite0")
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    from sktransfer import get_spec
    from sktransfer._estimators.base import resolve_device

    X, y = digits_images(args.n)
    spec = get_spec(args.backbone)
    device = resolve_device("auto")
    # Interleave the two sides so that a noisy neighbour hurts both alike.
    ours, device = sktransfer_epochs(X, y, args)
    hand = hand_written_epochs(spec, X, y, args, device)
    ours_again, _ = sktransfer_epochs(X, y, args)
    ours_s = statistics.median(ours[1:] + ours_again[1:])
    hand_s = statistics.median(hand[1:])
    ratio = ours_s / hand_s
    print(f"epoch of {len(X)} images at {args.image_size}px, batch {args.batch_size}, {args.backbone} on {device}:")
    print(f"  sktransfer    {ours_s:.2f}s (epochs: {', '.join(f'{d:.2f}' for d in ours + ours_again)})")
    print(f"  hand-written  {hand_s:.2f}s (epochs: {', '.join(f'{d:.2f}' for d in hand)})")
    print(f"ratio sktransfer / hand-written = {ratio:.3f} (target <= 1.10)")
    save_result("finetune_epoch", {
        "backbone": args.backbone, "n_images": len(X), "image_size": args.image_size, "batch_size": args.batch_size,
        "device": device, "sktransfer_epoch_s": ours_s, "hand_written_epoch_s": hand_s,
        "sktransfer_epochs_s": ours + ours_again, "hand_written_epochs_s": hand,
        "ratio": ratio, "target_ratio": 1.10,
    })


if __name__ == "__main__":
    main()
