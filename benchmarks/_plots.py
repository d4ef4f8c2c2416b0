"""Learning-curve PNGs from skorch's history."""

from __future__ import annotations


def save_learning_curve(history, path: str, title: str) -> str:
    """Plot train (and validation) loss per epoch from a skorch ``History``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    epochs = history[:, "epoch"]
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=120)
    ax.plot(epochs, history[:, "train_loss"], marker="o", label="train loss")
    try:
        ax.plot(epochs, history[:, "valid_loss"], marker="o", label="validation loss")
    except KeyError:  # fitted without a validation split
        pass
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    print(f"wrote {path}")
    return path
