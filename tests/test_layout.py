"""The embeddable prosody module stands alone: importing it loads torch and nothing else of ours."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Audio and data libraries, and every part of the package outside the prosody module.
FORBIDDEN = ("librosa", "soundfile", "pyworld", "torchaudio", "yaml", "matplotlib", "scipy")


def _modules_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


# ``import prosody_vae`` alone loads nothing (its public names are loaded on first access); taking a
# name from it loads the prosody module and nothing else.
@pytest.mark.parametrize("statement", ["import prosody_vae.prosody", "from prosody_vae import CapacitronVAE"])
def test_prosody_module_imports_nothing_else(statement: str) -> None:
    loaded = _modules_after(statement)
    ours = sorted(
        m for m in loaded if m.startswith("prosody_vae.") and not m.startswith("prosody_vae.prosody")
    )
    assert ours == [], f"{statement} also loads {ours}"
    heavy = sorted(m for m in loaded if m.split(".")[0] in FORBIDDEN)
    assert heavy == [], f"{statement} loads {heavy}"
    assert "torch" in loaded  # the check sees real imports (guards against an empty module list)


def test_package_import_is_lazy() -> None:
    loaded = _modules_after("import prosody_vae")
    assert "torch" not in loaded and "prosody_vae.prosody" not in loaded
    assert "prosody_vae" in loaded  # the check sees real imports


def test_config_costs_no_audio_libraries() -> None:
    loaded = _modules_after("import prosody_vae.config")
    heavy = sorted({m.split(".")[0] for m in loaded} & {"librosa", "soundfile", "pyworld", "torchaudio"})
    assert heavy == []
    assert "yaml" in loaded  # the config really was imported


def test_public_names_unchanged() -> None:
    import prosody_vae
    from prosody_vae import prosody

    for name in prosody_vae.__all__:
        assert getattr(prosody_vae, name) is getattr(prosody, name)
