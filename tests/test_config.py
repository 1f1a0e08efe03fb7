"""Configs are typed at the door: YAML and ``--set`` values converted to the field types, ranges checked
before training starts, sections frozen, and saved configs (and old checkpoints' dicts) load back."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from prosody_vae.config import (
    ExperimentConfig,
    OptimConfig,
    ProsodyConfig,
    TrainConfig,
    load_config,
    save_config,
)

REPO = Path(__file__).resolve().parents[1]
CPU_RECIPE = REPO / "egs" / "espeak_prosody" / "conf" / "train_cpu.yaml"
RECIPE_CONFIGS = sorted((REPO / "egs").glob("*/conf/train_*.yaml"))


def _write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("path", RECIPE_CONFIGS, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_every_recipe_config_loads(path: Path) -> None:
    config = load_config(path)
    assert isinstance(config.optim.adam_betas, tuple) and isinstance(config.prosody.ref_channels, tuple)


def test_recipe_configs_found() -> None:
    assert len(RECIPE_CONFIGS) >= 4  # guards the parametrisation above against an empty glob


@pytest.mark.parametrize(
    ("override", "section", "name", "expected"),
    [
        ("optim.lr=1e-3", "optim", "lr", 1e-3),  # YAML 1.1 reads 1e-3 as the string '1e-3'
        ("optim.weight_decay=1e-6", "optim", "weight_decay", 1e-6),
        ("capacity.capacity=20", "capacity", "capacity", 20.0),  # an int for a float field
        ("train.steps=2e4", "train", "steps", 20000),  # an integral exponent for an int field
        ("optim.adam_betas=[0.8, 0.99]", "optim", "adam_betas", (0.8, 0.99)),
        ("prosody.ref_channels=[8, 16]", "prosody", "ref_channels", (8, 16)),
        ("audio.trim_top_db=null", "audio", "trim_top_db", None),
        ("train.valid_audio=false", "train", "valid_audio", False),
        ("data.root=2024", "data", "root", "2024"),  # a folder name, not the int 2024
        ("optim.amp=bf16", "optim", "amp", "bf16"),
    ],
)
def test_overrides_are_converted_to_the_field_type(override, section, name, expected) -> None:
    value = getattr(getattr(load_config(CPU_RECIPE, [override]), section), name)
    assert value == expected and type(value) is type(expected)


def test_yaml_exponents_without_a_dot_are_floats(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("optim:\n  lr: 1e-3\n  weight_decay: 1e-6\n  adam_eps: 1e-8\naudio:\n  log_floor: 1e-5\n")
    assert yaml.safe_load(path.read_text())["optim"]["lr"] == "1e-3"  # the problem being solved
    config = load_config(path)
    assert (config.optim.lr, config.optim.weight_decay, config.optim.adam_eps) == (1e-3, 1e-6, 1e-8)
    assert config.audio.log_floor == 1e-5 and isinstance(config.optim.lr, float)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("prosody.latent_dim=16.5", "prosody.latent_dim: expected an int, got 16.5"),
        ("train.log_every=abc", "train.log_every: expected an int, got 'abc'"),
        ("train.log_every=true", "train.log_every: expected an int, got True"),
        ("optim.lr=fast", "optim.lr: expected a finite number, got 'fast'"),
        ("optim.lr=.nan", "optim.lr: expected a finite number, got nan"),
        ("train.valid_audio=maybe", "train.valid_audio: expected true or false, got 'maybe'"),
        ("optim.amp=fp8", "optim.amp: unknown 'fp8' (choices: 'none', 'bf16', 'fp16')"),
        ("prosody.prior=vamp", "prosody.prior: unknown 'vamp'"),
        ("optim.adam_betas=0.9", "optim.adam_betas: expected a list, got 0.9"),
        ("optim.adam_betas=[0.9]", "optim.adam_betas: expected a list of 2 values"),
        ("prosody.ref_channels=[8, x]", "prosody.ref_channels[1]: expected an int, got 'x'"),
        ("train.stepz=3", "train: unknown key(s) ['stepz']"),
        ("trian.steps=3", "unknown key(s) ['trian']; known: ['audio', 'text'"),
    ],
)
def test_bad_values_are_one_line_errors_naming_the_key(override: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        load_config(CPU_RECIPE, [override])
    text = str(info.value)
    assert message in text and str(CPU_RECIPE) in text and "\n" not in text


def test_a_malformed_override_is_refused() -> None:
    with pytest.raises(ValueError, match="expected section.key=value"):
        load_config(CPU_RECIPE, ["optim.lr"])
    with pytest.raises(ValueError, match="not valid YAML"):
        load_config(CPU_RECIPE, ["optim.adam_betas=[0.9"])


def test_unknown_keys_in_a_file_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"optim: unknown key\(s\) \['learning_rate'\]"):
        load_config(_write(tmp_path, {"optim": {"learning_rate": 0.1}}))
    with pytest.raises(ValueError, match="train: expected a mapping"):
        load_config(_write(tmp_path, {"train": [1, 2]}))


def test_an_empty_section_takes_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("train:\noptim:\n  lr: 0.01\n")
    config = load_config(path, ["data.batch_size=2"])
    assert config.train == TrainConfig() and config.optim.lr == 0.01 and config.data.batch_size == 2


@pytest.mark.parametrize(
    "override",
    [
        "train.checkpoint_every=0",
        "train.log_every=0",
        "train.valid_every=0",
        "train.steps=0",
        "train.keep_last=0",
        "train.max_nonfinite=0",
        "train.seed=-1",
        "train.guided_attention_sigma=0",
        "train.stop_weight=-1",
        "optim.lr=0",
        "optim.decay_steps=0",
        "optim.accumulation_steps=0",
        "optim.warmup_steps=-1",
        "optim.decay_rate=1.5",
        "optim.lr_min=0.1",  # above lr
        "optim.adam_betas=[1.0, 0.999]",
        "optim.adam_eps=0",
        "optim.max_grad_norm=0",
        "capacity.capacity=-1",
        "capacity.beta_init=0",
        "capacity.beta_momentum=1",
        "data.batch_size=0",
        "data.num_workers=-1",
        "data.root=",
        "prosody.latent_dim=0",
        "prosody.speaker_dim=-1",
        "prosody.ref_channels=[]",
        "backbone.r=9",
        "backbone.postnet_n_convs=1",
        "audio.hop_length=0",
    ],
)
def test_ranges_are_checked(override: str) -> None:
    key = override.split("=")[0]
    with pytest.raises(ValueError) as info:
        load_config(CPU_RECIPE, [override])
    assert key.split(".")[1] in str(info.value) and "\n" not in str(info.value)


def test_range_checks_accept_the_edges() -> None:
    # the other side of test_ranges_are_checked: the smallest sensible values load
    edges = [
        "train.checkpoint_every=1",
        "train.log_every=1",
        "train.valid_every=1",
        "train.steps=1",
        "train.stop_weight=0",
        "optim.warmup_steps=0",
        "optim.decay_rate=1",
        "optim.lr_min=0",
        "optim.adam_betas=[0, 0]",
        "capacity.capacity=0",
        "capacity.beta_momentum=0",
        "backbone.r=8",
        "backbone.postnet_n_convs=2",
        "prosody.speaker_dim=0",
    ]
    config = load_config(CPU_RECIPE, edges)
    assert config.train.checkpoint_every == 1 and config.backbone.r == 8


def test_range_checks_hold_for_sections_built_in_python() -> None:
    with pytest.raises(ValueError, match=r"train.checkpoint_every must be an int >= 1, got 0"):
        TrainConfig(checkpoint_every=0)
    with pytest.raises(ValueError, match="optim.amp: unknown 'fp8'"):
        OptimConfig(amp="fp8")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ref_channels must be a non-empty tuple"):
        ProsodyConfig(ref_channels=[8, 8])  # type: ignore[arg-type]


def test_sections_are_frozen() -> None:
    config = load_config(CPU_RECIPE)
    for section in dataclasses.fields(config):
        assert dataclasses.is_dataclass(getattr(config, section.name))
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(
                getattr(config, section.name), dataclasses.fields(getattr(config, section.name))[0].name, 1
            )
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.train = TrainConfig()  # type: ignore[misc]
    changed = dataclasses.replace(config, train=dataclasses.replace(config.train, steps=7))
    assert changed.train.steps == 7 and config.train.steps == 6000  # replace copies; the original stays


def test_saved_config_loads_back_equal(tmp_path: Path) -> None:
    config = load_config(
        CPU_RECIPE,
        ["optim.lr=1e-3", "optim.adam_betas=[0.8, 0.95]", "audio.trim_top_db=null", "data.root=2024"],
    )
    save_config(config, tmp_path / "saved.yaml")
    assert load_config(tmp_path / "saved.yaml") == config
    raw = config.to_dict()
    assert raw["optim"]["adam_betas"] == [0.8, 0.95] and isinstance(raw["prosody"]["ref_channels"], list)
    assert ExperimentConfig.from_dict(raw) == config  # what a checkpoint stores


def test_old_checkpoint_dicts_take_defaults_for_new_keys() -> None:
    raw = ExperimentConfig().to_dict()
    del raw["optim"]["adam_betas"], raw["optim"]["adam_eps"], raw["backbone"]["kind"]
    config = ExperimentConfig.from_dict(raw, source="old.pt (config)")
    assert config.optim.adam_betas == (0.9, 0.999) and config.optim.adam_eps == 1e-6
    assert config.backbone.kind == "tacotron2"


def test_the_shipped_model_config_loads() -> None:
    torch = pytest.importorskip("torch")
    from prosody_vae.inference.packed import builtin_model_path

    state = torch.load(builtin_model_path(), map_location="cpu", weights_only=True)
    config = ExperimentConfig.from_dict(state["config"], source="espeak_prosody.pt")
    assert config.prosody.latent_dim == state["config"]["prosody"]["latent_dim"]
    assert config.prosody.ref_channels == tuple(state["config"]["prosody"]["ref_channels"])
    assert config.optim.adam_betas == tuple(state["config"]["optim"].get("adam_betas", (0.9, 0.999)))


def test_cli_refuses_a_zero_interval_before_training(tmp_path: Path, capsys) -> None:
    from prosody_vae.cli import main

    out = tmp_path / "exp"
    argv = ["train", "--config", str(CPU_RECIPE), "--out", str(out), "--set", "train.checkpoint_every=0"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "train.checkpoint_every must be an int >= 1, got 0" in err
    assert "\n" not in err and not out.exists()  # nothing was started


def test_cli_trains_with_an_exponent_learning_rate(tiny_config_file, tmp_path: Path) -> None:
    from prosody_vae.cli import main

    out = tmp_path / "exp"
    argv = ["train", "--config", str(tiny_config_file()), "--out", str(out), "--max-steps", "1"]
    assert main([*argv, "--threads", "1", "--set", "optim.lr=1e-3", "--set", "train.steps=1"]) == 0
    saved = load_config(out / "config.yaml")
    assert saved.optim.lr == 1e-3 and (out / "checkpoints" / "step_1.pt").is_file()
