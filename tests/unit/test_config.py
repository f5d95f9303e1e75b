import pytest

from salbench import config
from salbench.config import ConfigError, load_profile


@pytest.mark.parametrize("name", config.PROFILES)
def test_profiles_load(name):
    p = load_profile(name)
    assert p.name == name
    assert p.data.image_shape == (140, 192)


def test_paper_profile_is_the_paper():
    p = load_profile("paper")
    d, t = p.data, p.classifier
    assert (d.n_train, d.n_val, d.n_holdout) == (42000, 6000, 12000)
    assert (d.lesion_diameter, d.lesion_intensity, d.n_lesions, d.perlin_res) == (10, 0.3, 2, (5, 8))
    assert (t.optimizer, t.learning_rate, t.momentum) == ("sgd", 5e-5, 0.9)
    assert (t.batch_size, t.val_batch_size, t.max_epochs, t.patience) == (128, 32, 125, 10)
    assert (t.min_delta, t.loss_stop, t.runs) == (5e-4, 0.05, 3)
    assert p.localization.n_images == 200
    assert p.publish and not load_profile("smoke").publish


def test_override():
    p = load_profile("smoke", data__n_train=10, seed=3)
    assert p.data.n_train == 10 and p.seed == 3


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"data__n_trian": 10}, "unknown key data.n_trian"),
        ({"data__n_train": -4}, "data.n_train=-4"),
        ({"data__n_train": 7}, "even count"),
        ({"data__n_train": "many"}, "expected an integer"),
        ({"data__lesion_diameter": 200}, "data.lesion_diameter=200"),
        ({"data__lesion_intensity": 1.0}, "data.lesion_intensity=1.0"),
        ({"data__perlin_res": [6, 8]}, "data.perlin_res"),
        ({"data__lesion_window": "triangle"}, "'triangle' is not valid"),
        ({"classifier__optimizer": "rmsprop"}, "classifier.optimizer='rmsprop'"),
        ({"classifier__batch_size": 0}, "classifier.batch_size=0"),
        ({"classifier__n_train_images": 10**6}, "classifier.n_train_images=1000000"),
        ({"second__architecture": "vgg"}, "second.architecture='vgg'"),
        ({"saliency__n_images": 1000}, "saliency.n_images=1000"),
        ({"localization__n_randomized_images": 3}, "localization.n_randomized_images=3: must be in 2..2"),
        ({"localization__n_images_other_runs": 1}, "localization.n_images_other_runs=1: must be in 2..2"),
        ({"bogus": 1}, "unknown key 'bogus'"),
        ({"nosuch__key": 1}, "unknown section 'nosuch'"),
        ({"data__mri_dir": "/no/such/folder"}, "data.mri_dir='/no/such/folder'"),
        # The tables' headline is their largest unit: a smaller headline would make paper.md
        # quote another unit than the notebooks.
        ({"fidelity__units": [1, 20, 30], "fidelity__headline_unit": 20}, "must be the largest of fidelity.units"),
    ],
)
def test_bad_values_name_key_value_and_rule(overrides, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_profile("smoke", **overrides)


def test_unknown_profile():
    with pytest.raises(ConfigError, match="choose one of"):
        load_profile("huge")


def test_profiles_are_frozen():
    p = load_profile("smoke")
    with pytest.raises(Exception):
        p.data.n_train = 5  # type: ignore[misc]


def test_config_hash_is_stable_and_sensitive():
    a = load_profile("smoke")
    b = load_profile("smoke")
    c = load_profile("smoke", data__lesion_intensity=0.2)
    assert config.config_hash(a.data) == config.config_hash(b.data)
    assert config.config_hash(a.data) != config.config_hash(c.data)


# ---------------------------------------------------------------- files, --config, --set


def test_invalid_yaml_is_one_line_with_file_line_and_column(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 1\ndata:\n  n_train: [1, 2\n  n_val: 4\n")
    with pytest.raises(ConfigError) as err:
        config.resolve_profile(config_path=bad)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{bad}:4:8: invalid YAML: ") and "flow sequence" in msg, msg


def test_missing_profile_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml: no such profile file"):
        config.resolve_profile(config_path=tmp_path / "nope.yaml")


def test_yaml11_exponent_strings_are_floats(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("seed: 1\nclassifier:\n  learning_rate: 1e-4\n  min_delta: ' 5E-3 '\n")
    p = config.load_profile(f)
    assert p.classifier.learning_rate == 1e-4 and isinstance(p.classifier.learning_rate, float)
    assert p.classifier.min_delta == 5e-3
    assert p.name == "mine" and p.overrides == ()
    with pytest.raises(ConfigError, match=r"classifier.learning_rate='fast': expected a number"):
        load_profile("smoke", classifier__learning_rate="fast")
    with pytest.raises(ConfigError, match=r"data.n_train='1e2': expected an integer"):
        load_profile("smoke", data__n_train="1e2")  # integers stay strict


def test_precedence_set_over_config_over_profile(tmp_path):
    f = tmp_path / "layer.yaml"
    f.write_text("data:\n  n_train: 100\n  n_val: 20\n")
    both = config.resolve_profile("smoke", f, ["data.n_train=200", "saliency.batch_size=3"])
    assert (both.data.n_train, both.data.n_val, both.saliency.batch_size) == (200, 20, 3)
    assert both.data.n_holdout == load_profile("smoke").data.n_holdout  # untouched keys from --profile
    assert config.resolve_profile("smoke", f).data.n_train == 100
    assert config.resolve_profile("smoke").data.n_train == 64
    assert both.overrides == ("data.n_train=200", "data.n_val=20", "saliency.batch_size=3")
    # The last --set of a key wins.
    assert config.resolve_profile("smoke", sets=["seed=1", "seed=2"]).seed == 2


def test_set_values_are_yaml_and_validated(tmp_path):
    p = config.resolve_profile("smoke", sets=["data.perlin_res=[7, 8]", f"data.mri_dir={tmp_path}",
                                              "classifier.learning_rate=1e-3", "data.mri_flip=false"])
    assert p.data.perlin_res == (7, 8) and p.data.mri_dir == str(tmp_path)
    assert p.classifier.learning_rate == 1e-3 and p.data.mri_flip is False


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("data.n_trian=4", "unknown key data.n_trian (value 4); valid keys of data: ['chunk_size'"),
        ("dta.n_train=4", "unknown section 'dta'; valid: ['classifier', 'data'"),
        ("bogus=1", "unknown key 'bogus' (value 1); valid: ['name', 'publish', 'seed']"),
        ("data=3", "set a section's keys one by one, as data.KEY=VALUE"),
        ("data.n_train", "expected section.key=value"),
        ("data.n_train=7", "data.n_train=7: must be an even count"),
        ("data.perlin_res=[1, 2", "the value is not valid YAML"),
    ],
)
def test_bad_sets_are_one_line_errors(text, fragment):
    with pytest.raises(ConfigError) as err:
        config.resolve_profile("smoke", sets=[text])
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_overridden_profile_is_named_honestly_and_does_not_publish():
    plain = load_profile("quick")
    assert plain.name == "quick" and plain.publish and plain.overrides == ()
    p = config.resolve_profile("quick", sets=["classifier.max_epochs=1"])
    assert p.name.startswith("quick+") and len(p.name) == len("quick+") + 8
    assert not p.publish and p.overrides == ("classifier.max_epochs=1",)
    assert p.provenance() == {"profile": p.name, "seed": 2021, "overrides": ["classifier.max_epochs=1"]}
    assert plain.provenance() == {"profile": "quick", "seed": 2021}
    # Publishing only when asked; a different override set gets a different name.
    asked = config.resolve_profile("quick", sets=["classifier.max_epochs=1", "publish=true"])
    assert asked.publish and asked.name != p.name
    assert asked.overrides == ("classifier.max_epochs=1", "publish=true")
    smoke_pub = config.resolve_profile("smoke", sets=["publish=true"])
    assert smoke_pub.publish and smoke_pub.overrides == ("publish=true",) and smoke_pub.name.startswith("smoke+")
    # An override that changes nothing is no override.
    assert config.resolve_profile("quick", sets=["classifier.max_epochs=8"]) == plain
    # kwargs overrides follow the same rule.
    assert load_profile("quick", classifier__max_epochs=1) == p


def test_a_file_may_not_pose_as_a_builtin_profile(tmp_path):
    f = tmp_path / "quick.yaml"
    f.write_text((config.profile_path("quick")).read_text().replace("max_epochs: 8", "max_epochs: 4"))
    with pytest.raises(ConfigError, match=r"calls itself 'quick' but differs from the built-in 'quick' in \['classifier.max_epochs'\]"):
        config.resolve_profile(config_path=f)
    with pytest.raises(ConfigError, match="calls itself 'paper'"):
        config.resolve_profile("smoke", sets=["name=paper"])
    # The built-in file by its path is the built-in profile.
    assert config.resolve_profile(config_path=config.profile_path("quick")) == load_profile("quick")
    with pytest.raises(ConfigError, match=r"name='../up': a profile name is letters"):
        config.resolve_profile("smoke", sets=["name=../up"])
    named = config.resolve_profile("smoke", sets=["name=mine", "seed=3"])
    assert named.name == "mine" and named.overrides == ("seed=3",)


@pytest.mark.parametrize("sets", [(), ("data.n_train=32", "classifier.learning_rate=1e-3", "publish=true",
                                       "localization.n_randomized_images=2", "data.image_shape=[120, 192]")])
@pytest.mark.parametrize("name", config.PROFILES)
def test_dump_then_load_gives_an_equal_profile(tmp_path, name, sets):
    sets = sets if name == "smoke" else sets[1:3]  # the smoke-sized values do not fit every profile
    p = config.resolve_profile(name, sets=list(sets))
    path = config.dump_profile(p, tmp_path / "sub" / f"{p.name}.yaml")
    assert sorted(x.name for x in (tmp_path / "sub").iterdir()) == [f"{p.name}.yaml"]  # no temporary left
    q = load_profile(path)
    assert q == p
    assert config.resolve_profile(config_path=path) == p
    # Further overrides on a dumped profile keep its base name and all of its overrides.
    r = config.resolve_profile(config_path=path, sets=["saliency.batch_size=2"])
    assert r.name.split("+")[0] == name and r.overrides == (*p.overrides, "saliency.batch_size=2")


def test_no_profile_at_all():
    with pytest.raises(ConfigError, match="use --profile"):
        config.resolve_profile()
