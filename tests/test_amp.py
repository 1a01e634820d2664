"""Mixed precision: every trainer runs its network under autocast when ``amp`` is on (bfloat16 on CPU here) and
computes its losses in float32; what must stay float32 (Poincaré-ball maps, MAP refinement, inferer outputs)
does."""

from collections import namedtuple
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from monai_genvq.apps.anatomical_prior import (
    AnatomicalPriorInferer,
    ImageModelTrainer,
    ImageSegmentationVAE,
    LabelPriorTrainer,
    LabelPriorVAE,
    refine_latent,
)
from monai_genvq.apps.hyperbolic import HyperbolicVAE, HyperbolicVAETrainer
from monai_genvq.apps.hyperbolic.gyroplane import gyroplane_conv3d
from monai_genvq.engines import (
    AutoencoderTrainer,
    CodePriorTrainer,
    PrepareAutoencoderBatch,
    ReconstructionInferer,
    SoftIntroTrainer,
    VAETrainer,
)
from monai_genvq.networks import (
    ConvVAE,
    GatedPixelCNNPrior,
    ResNetAutoencoder,
    SoftIntroResNetVAE,
    VectorQuantizer,
    VQStage1,
)
from monai_genvq.utils import float32_region, to_float32

HALF = torch.bfloat16  # torch.autocast("cpu")'s default


def test_float32_region_switches_autocast_off_and_upcasts_half_arguments():
    @float32_region
    def gram(x):
        return x @ x.T, x.dtype

    x = torch.ones(2, 3)
    with torch.autocast("cpu"):
        assert (x @ x.T).dtype == HALF  # what the region prevents
        out, seen = gram(x.to(HALF))
    assert out.dtype == torch.float32 and seen == torch.float32
    out64, seen64 = gram(x.double())  # outside autocast nothing is cast
    assert out64.dtype == seen64 == torch.float64


def test_to_float32_walks_containers_and_dataclasses():
    @dataclass
    class Out:
        a: torch.Tensor
        n: int

    Pair = namedtuple("Pair", "x y")
    half = torch.zeros(2, dtype=torch.float16)
    value = to_float32({"o": Out(half, 3), "p": Pair(half, torch.zeros(1, dtype=torch.long)), "l": [half]})
    assert value["o"].a.dtype == torch.float32 and value["o"].n == 3
    assert isinstance(value["p"], Pair) and value["p"].x.dtype == torch.float32 and value["p"].y.dtype == torch.long
    assert value["l"][0].dtype == torch.float32


def _vq_autoencoder():
    return ResNetAutoencoder(2, 1, channels=(8, 16), latent_channels=4, bottleneck=VectorQuantizer(16, 4))


def _trainers():
    """(name, network, build(network, amp) -> trainer) of every trainer of the package, at toy sizes."""
    images = [{"image": torch.rand(2, 1, 16, 16)}]
    images32 = [{"image": torch.rand(2, 1, 32, 32), "attributes": torch.randn(2, 3)}]
    triplets = [{k: torch.rand(2, 1, 10, 10, 10) for k in ("parent", "child", "negative")}]
    labels = [{"label": torch.randint(0, 3, (2, 1, 16, 16))}]
    kw = {"decollate": False}

    def adam(net):
        return torch.optim.Adam(net.parameters(), 1e-3)

    stage1 = VQStage1(_vq_autoencoder())
    return [
        (
            "autoencoder",
            _vq_autoencoder(),
            lambda n, amp: AutoencoderTrainer(
                "cpu", 1, images, n, adam(n), nn.MSELoss(), PrepareAutoencoderBatch("image"), amp=amp, **kw
            ),
        ),
        (
            "code_prior",
            GatedPixelCNNPrior(16, channels=8, num_layers=2),
            lambda n, amp: CodePriorTrainer("cpu", 1, images, n, adam(n), stage1, amp=amp, **kw),
        ),
        (
            "vae",
            ConvVAE(image_size=32, channels=(8, 8)),
            lambda n, amp: VAETrainer("cpu", 1, images32, n, adam(n), amp=amp, **kw),
        ),
        (
            "soft_intro",
            SoftIntroResNetVAE(image_size=32, channels=(8, 16), latent_dim=8),
            lambda n, amp: SoftIntroTrainer("cpu", 1, images32, n, adam(n.encoder), adam(n.decoder), amp=amp, **kw),
        ),
        (
            "hyperbolic",
            HyperbolicVAE(patch_size=10, latent_dim=2),
            lambda n, amp: HyperbolicVAETrainer("cpu", 1, triplets, n, adam(n), amp=amp, **kw),
        ),
        (
            "label_prior",
            LabelPriorVAE(2, 3, 16, (4,), 2),
            lambda n, amp: LabelPriorTrainer("cpu", 1, labels, n, adam(n), num_labels=3, amp=amp, **kw),
        ),
        (
            "image_model",
            ImageSegmentationVAE(LabelPriorVAE(2, 3, 16, (4,), 2)),
            lambda n, amp: ImageModelTrainer(
                "cpu", 2, images, n, torch.optim.Adam(n.trainable_parameters()), pretrain_iterations=1, amp=amp, **kw
            ),
        ),
    ]


@pytest.mark.parametrize("amp", [False, True], ids=["fp32", "amp"])
@pytest.mark.parametrize("case", range(len(_trainers())), ids=[t[0] for t in _trainers()])
def test_trainers_run_networks_under_autocast_with_float32_losses(case, amp):
    name, net, build = _trainers()[case]
    conv_dtypes = set()
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
            m.register_forward_hook(lambda mod, args, out: conv_dtypes.add(out.dtype))
    trainer = build(net, amp)
    trainer.run()
    if not amp:
        assert conv_dtypes == {torch.float32}, name
    elif name == "image_model":  # its atlas initialisation and prior renders stay float32 on purpose
        assert conv_dtypes == {HALF, torch.float32}, name
    else:  # every pass of the network
        assert conv_dtypes == {HALF}, name
    loss = trainer.state.output["loss"]
    assert loss.dtype == torch.float32 and torch.isfinite(loss), name
    for key in ("rec_loss", "kl", "nll", "triplet", "loss_d", "nll_bits"):
        value = trainer.state.output.get(key)
        assert value is None or value.dtype == torch.float32, (name, key)


def test_hyperbolic_maps_stay_float32_under_autocast():
    torch.manual_seed(0)
    net = HyperbolicVAE(patch_size=10, latent_dim=2)
    with torch.autocast("cpu"):
        out = net(torch.rand(2, 1, 10, 10, 10))
    assert out.reconstruction.dtype == HALF  # the decoder's convolutions ran in half precision
    assert out.mu.dtype == out.z.dtype == out.kl.dtype == torch.float32
    x = torch.rand(1, 2, 4, 4, 4) * 0.3
    p, a = torch.rand(3, 27, 2) * 0.3, torch.randn(3, 27, 2)
    reference = gyroplane_conv3d(x, p, a, 1.0)
    with torch.autocast("cpu"):
        amp_out = gyroplane_conv3d(x, p, a, 1.0)  # inner products by einsum: half precision without the region
    assert amp_out.dtype == torch.float32 and torch.equal(amp_out, reference)


def test_inferers_return_float32_and_map_refinement_runs_in_float32():
    net = ImageSegmentationVAE(LabelPriorVAE(2, 3, 16, (4,), 2)).eval()
    decoder_dtypes = set()
    for m in net.prior.decoder.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            m.register_forward_hook(lambda mod, args, out: decoder_dtypes.add(out.dtype))
    x = torch.rand(2, 1, 16, 16)
    with torch.autocast("cpu"):
        z = refine_latent(net, x, torch.zeros(2, 2), steps=2)
        assert decoder_dtypes == {torch.float32}  # every decode of the refinement
        segmentation = AnatomicalPriorInferer(refine_steps=0)(x, net)
        recon = ReconstructionInferer()(torch.rand(1, 1, 16, 16), _vq_autoencoder().eval())
    assert HALF in decoder_dtypes  # the inferer's own decode follows autocast
    assert z.dtype == segmentation.dtype == recon.dtype == torch.float32
