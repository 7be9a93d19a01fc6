"""The bundle's README says what the configs do: its profile table is rendered from the configs here."""

from __future__ import annotations

from pathlib import Path

from monai.bundle import ConfigParser

BUNDLE = Path(__file__).resolve().parents[2] / "bundle"
CONFIGS = BUNDLE / "configs"
README = BUNDLE / "docs" / "README.md"
LR_STEP_THIRD = "$max(1, @max_epochs // 3)"
PROFILES = ((), ("profile_paper.json",), ("profile_realct.json",))  # the README table's columns, in order


def _sci(x: float) -> str:
    """0.003 -> "3e-3" (as the table writes learning rates and weight decays)."""
    mantissa, exponent = f"{x:e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def _profile(*files: str) -> dict[str, str]:
    """The table's cells for the configs ``files`` (merged in order, as ``--config_file`` merges them)."""
    parser = ConfigParser(ConfigParser.load_config_files([str(CONFIGS / f) for f in files]))
    get = parser.get

    def fixed(key: str, default_key: str | None = None):  # a profile's explicit setting, else the recipe default
        value = get(key)
        return value if value is not None else get(f"recipe_defaults#{default_key or key}")

    channels, spacing, patch = fixed("network_spec", "network")["channels"], fixed("spacing"), get("patch_size")
    samples = get("num_samples")
    opt = get("optimizer")
    name = opt["_target_"].rsplit(".", 1)[-1]
    if name == "SGD":
        name = f"SGD{' Nesterov' if opt.get('nesterov') else ''} {opt['momentum']:g}"
    lr_step = get("lr_step")
    steps = parser.get_parsed_content("lr_step")
    third = " (a third of `max_epochs`)" if lr_step == LR_STEP_THIRD else ""
    if get("lr_schedule") == "cosine":
        schedule = f"warm-up {get('warmup_iterations')} iterations, cosine to ×{get('lr_floor'):g} at the run's end"
    else:
        schedule = (
            "constant"
            if steps >= get("max_epochs")
            else f"×{get('lr_scheduler_step#gamma'):g} every {steps} epochs{third}"
        )
    minutes = get("time_limit_minutes")
    return {
        "channels": f"{channels[0]}…{channels[-1]}",
        "spacing": (f"{spacing[0]:g} mm" if len(set(spacing)) == 1 else "×".join(f"{s:g}" for s in spacing) + " mm"),
        "patch (ROI)": "×".join(str(p) for p in patch),
        "batch": f"{get('batch_size')} volumes × {samples} class-balanced patch{'es' if samples > 1 else ''}",
        "optimizer": f"{name}, lr {_sci(get('learning_rate'))}, wd {_sci(opt['weight_decay'])}",
        "lr schedule": schedule,
        "epochs": f"{get('max_epochs')}, validation every {get('val_interval')}",
        "training time limit": "none" if not minutes else f"{minutes:g} min, then a last validation",
        "precision (CPU)": {"auto": "auto (bf16 where the CPU has it)"}.get(get("precision"), get("precision")),
        "averaged weights (model.pt)": (
            f"yes, from {get('averaging_start'):g} of the run" if get("weight_averaging") else "no"
        ),
        "flips (left-right, front-back)": "yes" if get("flip_augmentation") else "no",
        "blur, gamma, noise": "yes" if get("scanner_augmentation") else "no",
        "organ-wise intensity shift (contrast phases)": "yes" if get("contrast_phase_augmentation") else "no",
        "class ratios (bg, liver, spleen, kidney, pancreas)": ":".join(str(r) for r in get("crop_ratios")),
        "sliding-window batch": str(get("sw_batch_size")),
    }


def _readme_table() -> dict[str, tuple[str, ...]]:
    section = README.read_text().split("## Profiles", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]  # skip header and rule
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    return {c[0]: tuple(c[1:]) for c in cells}


def test_profile_table_matches_the_configs():
    columns = [_profile("train.json", *profile) for profile in PROFILES]
    expected = {key: tuple(c[key] for c in columns) for key in columns[0]}
    rendered = "\n".join(f"| {key} | {' | '.join(cells)} |" for key, cells in expected.items())
    assert _readme_table() == expected, (
        f"bundle/docs/README.md's profile table is out of date; the configs say:\n{rendered}"
    )


def test_inference_defaults_are_the_training_defaults():
    """For a model without a recipe record, inference assumes the training defaults (train.json's recipe_defaults);
    with one, every fixed setting is left unset (null: the model's) and the sliding window defaults to the
    recorded training patch."""
    train = ConfigParser.load_config_file(str(CONFIGS / "train.json"))
    infer = ConfigParser.load_config_file(str(CONFIGS / "inference.json"))
    assert infer["recipe_defaults"] == {**train["recipe_defaults"], "patch_size": train["patch_size"]}
    for key in ("spacing", "orientation", "hu_window", "class_names", "network_spec"):
        assert train[key] is None and infer[key] is None, key
    assert infer["patch_size"] is None and infer["sliding_window"]["roi_size"] == "$@recipe.patch_size"
    assert train["validate"]["inferer"]["roi_size"] == "@patch_size"
