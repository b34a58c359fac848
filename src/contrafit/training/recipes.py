"""Named recipes shipped in ``contrafit/recipes/*.yaml``, or a user's YAML file."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from contrafit.config import RecipeConfig, from_plain, load_yaml
from contrafit.errors import ConfigError

DEFAULT_RECIPE = "pairs-lp-scl"


def _shipped() -> dict[str, Path]:
    folder = resources.files("contrafit") / "recipes"
    return {Path(str(p)).stem: Path(str(p)) for p in folder.iterdir() if str(p).endswith(".yaml")}


def list_recipes() -> dict[str, str]:
    """Shipped recipe name -> one-line description."""
    return {name: load_recipe(name).description for name in sorted(_shipped())}


def recipe_plain(name_or_path: str) -> dict[str, Any]:
    """The recipe as plain data (before overrides)."""
    if name_or_path == "default":
        name_or_path = DEFAULT_RECIPE
    shipped = _shipped()
    if name_or_path in shipped:
        path = shipped[name_or_path]
    elif name_or_path.endswith((".yaml", ".yml")):
        path = Path(name_or_path)
    else:
        raise ConfigError(
            f"unknown recipe {name_or_path!r}; use a shipped one ({', '.join(sorted(shipped))}) "
            "or a path to a .yaml file"
        )
    raw = load_yaml(str(path))
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a recipe must be a YAML mapping with 'name' and 'phases'")
    raw.setdefault("name", path.stem)
    return raw


def split_inference(recipe: dict[str, Any], where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the recipe without its ``inference:`` mapping, that mapping). A recipe may name the
    inference it was chosen with (e.g. ``inference: {mode: logreg}``); it is the run's default
    inference, and ``--set inference.*`` still overrides it."""
    recipe = dict(recipe)
    inference = recipe.pop("inference", None) or {}
    if not isinstance(inference, dict):
        raise ConfigError(f"{where}: 'inference' must be a mapping, e.g. {{mode: logreg}}")
    return recipe, dict(inference)


def load_recipe(name_or_path: str) -> RecipeConfig:
    where = f"recipe {name_or_path}"
    recipe, _ = split_inference(recipe_plain(name_or_path), where)
    return from_plain(RecipeConfig, recipe, where)
