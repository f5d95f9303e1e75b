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
        ({"bogus": 1}, "unknown key 'bogus'"),
        ({"nosuch__key": 1}, "unknown section 'nosuch'"),
        ({"data__mri_dir": "/no/such/folder"}, "data.mri_dir='/no/such/folder'"),
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
