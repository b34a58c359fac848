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


# run settings a recipe may name: the ones it was chosen with; ``--set`` still overrides them
RUN_SETTINGS = ("inference", "dropout")


def split_run_settings(recipe: dict[str, Any], where: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the recipe without its run settings, those settings). A recipe may name the inference it
    was chosen with (e.g. ``inference: {mode: logreg}``) and its dropout masks (``dropout:
    packed``); they become the run's defaults, and ``--set inference.*`` / ``--set dropout=``
    still override them. ``inference`` is always in the result ({} when the recipe names none),
    so ``--set inference.mode=knn`` has a mapping to land in."""
    recipe = dict(recipe)
    settings = {key: recipe.pop(key) for key in RUN_SETTINGS if key in recipe}
    inference = settings.get("inference") or {}
    if not isinstance(inference, dict):
        raise ConfigError(f"{where}: 'inference' must be a mapping, e.g. {{mode: logreg}}")
    settings["inference"] = dict(inference)
    return recipe, settings


def load_recipe(name_or_path: str) -> RecipeConfig:
    where = f"recipe {name_or_path}"
    recipe, _ = split_run_settings(recipe_plain(name_or_path), where)
    return from_plain(RecipeConfig, recipe, where)
