"""Stages and blocks by name: the user's ``layers=`` resolved against a spec's stages."""

from __future__ import annotations

from numbers import Integral

#: ``layers=`` name of the backbone's own final features (what ``layers=None`` gives), listed
#: with stages to add them to it: ``layers=["blocks.4", "blocks.6", FINAL_FEATURES]``. It comes
#: after every stage and isn't counted by negative integers.
FINAL_FEATURES = "final"


def resolve_layers(layers, stages: list[str], backbone_name: str) -> list[str] | None:
    """Stage names for ``layers`` (a name, or a list of names and negative integers).

    ``None`` means the backbone's own final features; :data:`FINAL_FEATURES` names them
    among stages.  Errors list the valid stages.
    """
    if layers is None:
        return None
    requested = [layers] if isinstance(layers, (str, Integral)) else list(layers)
    if not stages:
        raise ValueError(
            f"layers={layers!r}, but backbone {backbone_name!r} declares no stages: it offers only its final "
            "features. Use layers=None."
        )
    if not requested:
        raise ValueError(f"layers is empty; give at least one stage of {backbone_name!r}: {', '.join(stages)}.")
    names = []
    for item in requested:
        if isinstance(item, str):
            if item not in stages and item != FINAL_FEATURES:
                raise ValueError(
                    f"Unknown stage {item!r} for backbone {backbone_name!r}. Its stages, input to output: "
                    f"{', '.join(stages)}, then {FINAL_FEATURES!r} (its final features); or negative integers "
                    "counted from the top, -1 being the last stage."
                )
            name = item
        elif isinstance(item, Integral) and not isinstance(item, bool):
            if not -len(stages) <= item < 0:
                raise ValueError(
                    f"layers holds {item}, but stages are counted from the top with negative integers: "
                    f"-1 (the last, {stages[-1]!r}) down to -{len(stages)} ({stages[0]!r}) for backbone "
                    f"{backbone_name!r}."
                )
            name = stages[item]
        else:
            raise TypeError(
                f"layers must be a stage name, a negative integer or a list of them; got {item!r} "
                f"({type(item).__name__})."
            )
        if name in names:
            raise ValueError(f"layers names stage {name!r} twice; list each stage once.")
        names.append(name)
    # Input-to-output order, whatever order they were given in: the concatenation is then stable.
    order = [*stages, FINAL_FEATURES]
    return sorted(names, key=order.index)


def blocks_feeding(blocks: list[str], deepest_stage: str) -> list[str]:
    """The blocks up to the one that outputs ``deepest_stage``: only they get gradients.

    A block outputs a stage when the names agree, or one is the other's dotted tail
    (``"model.encoder.layer.2"`` and ``"layer.2"``).  When no block matches, all are kept.
    """
    def outputs(block: str) -> bool:
        return block == deepest_stage or block.endswith("." + deepest_stage) or deepest_stage.endswith("." + block)

    matches = [i for i, block in enumerate(blocks) if outputs(block)]
    return blocks[: matches[-1] + 1] if matches else blocks
