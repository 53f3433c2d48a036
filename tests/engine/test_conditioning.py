"""The input image of image-to-video, prepared as Lightricks' reference prepares it: compressed once at its
own size, then scaled to cover each stage's size (bilinear, no antialiasing) and cut from the centre."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from ltxserve.engine import sampling
from ltxserve.engine.sampling import denoise, fit_image, prepare_image
from ltxserve.engine.spec import Geometry
from ltxserve.order import ImageInput, Order, Task


def _stripes(width: int, height: int) -> torch.Tensor:
    """[H, W, 3] in 0..255 with a different value in every row and column."""
    rows = torch.arange(height).view(-1, 1) * 7 % 256
    columns = torch.arange(width).view(1, -1) * 13 % 256
    return torch.stack([rows.expand(height, width), columns.expand(height, width), (rows + columns) % 256], -1).float()


def _image_to_video(image: Image.Image) -> Order:
    first = ImageInput("image", image.width, image.height)
    return Order(prompt="a lighthouse", width=1920, height=1080, fps=25, num_frames=25, seed=2,
                 task=Task.IMAGE_TO_VIDEO, images=(first,))


def test_fitting_samples_pixel_centres_without_antialiasing():
    """A 3x reduction by bilinear interpolation without antialiasing lands exactly on every third pixel's
    centre; an antialiased filter (PIL's, or the Lanczos once used here) averages neighbours instead."""
    pixels = _stripes(300, 90)
    fitted = fit_image(pixels, 100, 30)
    assert fitted.shape == (1, 3, 30, 100)
    expected = pixels[1::3, 1::3].permute(2, 0, 1).unsqueeze(0) / 255
    torch.testing.assert_close(fitted, expected, rtol=0, atol=1e-6)


def test_fitting_covers_the_target_and_cuts_the_centre():
    pixels = _stripes(600, 90)  # 20:3 into 10:3: scaled to 200x30, then the middle 100 columns
    fitted = fit_image(pixels, 100, 30)
    expected = pixels[1::3, 151:451:3].permute(2, 0, 1).unsqueeze(0) / 255
    torch.testing.assert_close(fitted, expected, rtol=0, atol=1e-6)


def test_an_image_of_the_target_size_is_unchanged():
    pixels = _stripes(64, 32)
    torch.testing.assert_close(fit_image(pixels, 64, 32)[0].permute(1, 2, 0) * 255, pixels, rtol=0, atol=1e-4)


def test_compression_keeps_the_images_own_size():
    image = Image.fromarray(_stripes(301, 171).numpy().astype(np.uint8))
    untouched = prepare_image(image, crf=0)
    assert untouched.shape == (171, 301, 3)
    assert torch.equal(untouched, torch.from_numpy(np.array(image)).float())
    compressed = prepare_image(image, crf=33)
    assert compressed.shape == (170, 300, 3)  # H.264 wants even sizes: the reference drops the odd row and column
    assert (compressed - untouched[:170, :300]).abs().mean() > 1


def test_image_to_video_compresses_the_image_once_at_its_own_size(engine, monkeypatch):
    """Before, the pipeline compressed the image after it had been fitted to the model's size, and stage 2
    compressed it once more."""
    from diffusers.pipelines.ltx2 import pipeline_ltx2_image2video, utils

    compressed = []
    original = utils.apply_image_conditioning_crf

    def recording(image, crf):
        compressed.append((image.shape, crf))
        return original(image, crf)

    for module in (utils, pipeline_ltx2_image2video):
        monkeypatch.setattr(module, "apply_image_conditioning_crf", recording)
    image = Image.fromarray(_stripes(640, 360).numpy().astype(np.uint8))
    spec = _image_to_video(image)
    denoise(engine.model, spec, Geometry.plan(spec, engine.model.profile.render_scale), image)
    assert compressed == [((360, 640, 3), 33)]


def test_both_stages_are_conditioned_on_the_image_fitted_to_their_own_size(engine, monkeypatch):
    fitted = []
    original = sampling.fit_image

    def recording(pixels, width, height):
        fitted.append((tuple(pixels.shape), width, height))
        return original(pixels, width, height)

    monkeypatch.setattr(sampling, "fit_image", recording)
    image = Image.fromarray(_stripes(640, 360).numpy().astype(np.uint8))
    spec = _image_to_video(image)
    geometry = Geometry.plan(spec, engine.model.profile.render_scale)
    denoise(engine.model, spec, geometry, image)
    assert fitted == [
        ((360, 640, 3), geometry.stage1_width, geometry.stage1_height),
        ((360, 640, 3), geometry.refine_width, geometry.refine_height),
    ]


def test_the_pipeline_sees_the_fitted_pixels_unchanged(engine):
    """The stage-1 pipeline's own preprocessing must not resize or recompress what it is given."""
    pipe = engine.model.image_to_video
    fitted = fit_image(_stripes(64, 32), 64, 32)
    processed = pipe.video_processor.preprocess(fitted, height=32, width=64)
    torch.testing.assert_close(processed, fitted * 2 - 1, rtol=0, atol=1e-6)
