import pytest

from contrafit import build_run_config
from contrafit.config import RunConfig, from_plain
from contrafit.errors import ConfigError
from contrafit.training.recipes import list_recipes, load_recipe


def test_shipped_recipes_load_and_describe_themselves():
    recipes = list_recipes()
    assert "ce" in recipes and all(recipes.values())
    ce = load_recipe("ce")
    assert ce.phases[0].objectives[0].name == "cross_entropy" and ce.phases[0].lr == 1e-4


def test_overrides_by_index_name_and_wildcard():
    cfg = build_run_config(
        "ce",
        overrides=[
            "phases.0.lr=3e-5",
            "phases.finetune.epochs=2",
            "phases.*.batch_size=4",
            "model.pooling=cls",
            "seed=7",
            "inference.mode=knn",
            "inference.knn_k=3",
        ],
    )
    phase = cfg.recipe.phases[0]
    assert (phase.lr, phase.epochs, phase.batch_size) == (3e-5, 2, 4)
    assert cfg.recipe.model.pooling == "cls" and cfg.seed == 7
    assert (cfg.inference.mode, cfg.inference.knn_k) == ("knn", 3)


@pytest.mark.parametrize(
    "override, message",
    [
        ("phases.0.lrr=1", r"unknown key\(s\) \['lrr'\]"),
        ("model.pooling=max", r"expected one of \['mean', 'cls'\], got 'max'"),
        ("phases.0.epochs=many", r"epochs: expected int, got 'many'"),
        ("phases.9.lr=1", r"no element '9'"),
        ("nonsense", r"expected key=value"),
        ("phases.0.epochs=0", r"epochs must be > 0"),
        (
            "inference.mode=vote",
            r"expected one of \['head', 'proxy', 'knn', 'logreg'\], got 'vote'",
        ),
    ],
)
def test_bad_overrides_are_clear(override, message):
    with pytest.raises(ConfigError, match=message):
        build_run_config("ce", overrides=[override])


def test_unknown_recipe_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match=r"unknown recipe 'nope'; use a shipped one \(.*ce"):
        build_run_config("nope")


def test_resolved_config_round_trips():
    cfg = build_run_config("ce", overrides=["phases.0.objectives.0.label_smoothing=0.1"])
    again = from_plain(RunConfig, cfg.to_dict(), "config")
    assert again == cfg and again.recipe.phases[0].objectives[0].params == {"label_smoothing": 0.1}


def test_yaml_recipe_file_with_unknown_phase_key(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(
        "name: r\nphases:\n  - name: a\n    objectives: [cross_entropy]\n    epoch: 3\n"
    )
    with pytest.raises(ConfigError, match=r"phases\[0\]: unknown key\(s\) \['epoch'\]"):
        build_run_config(str(path))


def test_augment_on_unlabeled_phase_is_refused_before_training():
    with pytest.raises(ConfigError, match="augment: imbalance needs data: labeled"):
        build_run_config("dae-ft", overrides=["phases.dae.augment=imbalance"])


def test_a_recipe_file_may_set_the_inference_it_was_chosen_with(tmp_path):
    path = tmp_path / "r.yaml"
    body = "name: r\nphases:\n  - name: a\n    objectives: [cross_entropy]\n"
    path.write_text(body + "inference: {mode: logreg, logreg_c: 0.5}\n")
    cfg = build_run_config(str(path))
    assert (cfg.inference.mode, cfg.inference.logreg_c) == ("logreg", 0.5)
    assert load_recipe(str(path)).name == "r"
    again = build_run_config(str(path), overrides=["inference.mode=head"])  # the run decides last
    assert (again.inference.mode, again.inference.logreg_c) == ("head", 0.5)
    assert build_run_config("ce").inference.mode == "head"  # recipes without one: the default
    path.write_text(body + "inference: {mode: vote}\n")
    with pytest.raises(ConfigError, match="inference"):
        build_run_config(str(path))
    path.write_text(body + "inference: logreg\n")
    with pytest.raises(ConfigError, match="'inference' must be a mapping"):
        build_run_config(str(path))


def test_a_recipe_may_name_its_dropout_masks_and_the_run_decides_last(tmp_path):
    assert build_run_config("default").dropout == "packed"  # chosen with them (powered-fresh 14)
    assert build_run_config("default", overrides=["dropout=torch"]).dropout == "torch"
    assert build_run_config("ce").dropout == "torch"  # recipes that name none: torch's masks
    path = tmp_path / "r.yaml"
    body = "name: r\nphases:\n  - name: a\n    objectives: [cross_entropy]\n"
    path.write_text(body + "dropout: packed\n")
    assert build_run_config(str(path)).dropout == "packed"
    assert load_recipe(str(path)).name == "r"  # the recipe itself has no dropout field
    path.write_text(body + "dropout: sometimes\n")
    with pytest.raises(ConfigError, match="dropout"):
        build_run_config(str(path))
