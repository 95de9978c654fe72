"""Video frames: bounded, evenly spaced, decoded by index, each frame one normalised tile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("PIL")

from interns1_plugin.processing.image import TilingConfig, tile_image  # noqa: E402
from interns1_plugin.processing.video import (  # noqa: E402
    DEFAULT_NUM_FRAMES,
    preprocess_video,
    sample_indices,
    select_frames,
)
from interns1_plugin.processing.video_processor import (  # noqa: E402
    InternS1VideoProcessor,
    as_video_list,
)

SINGLE_TILE = TilingConfig(max_tiles=1)


def gray_video(num_frames: int, height: int = 120, width: int = 160) -> np.ndarray:
    """Frame i is a flat grey whose level rises with i, so a frame tells its index."""
    levels = np.linspace(0, 255, num_frames).round().astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (num_frames, height, width, 3)).copy()


def write_video_file(path: Path, frames: np.ndarray, fps: int = 30) -> Path:
    """Encode frames with OpenCV (or PyAV); skip the test when neither can write video."""
    try:
        import cv2
    except ImportError:
        cv2 = None
    if cv2 is not None:
        height, width = frames.shape[1:3]
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
        if writer.isOpened():
            for frame in frames:
                writer.write(np.ascontiguousarray(frame[..., ::-1]))
            writer.release()
            return path
    av = pytest.importorskip("av", reason="writing a test video needs OpenCV or PyAV")
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mjpeg", rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuvj420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def test_default_is_bounded():
    assert DEFAULT_NUM_FRAMES == 32
    assert len(sample_indices(10_000)) == 32


@pytest.mark.parametrize("total", [1, 5, 31, 32, 33, 100, 1000, 123_457])
@pytest.mark.parametrize("wanted", [1, 8, 32])
def test_indices_are_bounded_sorted_and_in_range(total, wanted):
    indices = sample_indices(total, wanted)
    assert len(indices) == min(total, wanted)
    assert indices.min() >= 0 and indices.max() < total
    assert np.all(np.diff(indices) > 0)


def test_indices_are_segment_centres():
    assert sample_indices(100, 4).tolist() == [12, 37, 62, 87]
    assert sample_indices(10, 32).tolist() == list(range(10))
    spacing = np.diff(sample_indices(3200, 32))
    assert spacing.min() == spacing.max() == 100


@pytest.mark.parametrize(("total", "wanted"), [(0, 4), (4, 0)])
def test_indices_reject_empty(total, wanted):
    with pytest.raises(ValueError):
        sample_indices(total, wanted)


def test_raw_array_keeps_only_sampled_frames():
    video = gray_video(1000)
    frames = preprocess_video(video, num_frames=16)
    indices = sample_indices(1000, 16)

    assert frames.num_frames == 16
    assert frames.indices.tolist() == indices.tolist()
    assert frames.pixel_values.shape == (16, 3, 448, 448)
    for row, index in enumerate(indices[:3]):
        expected = tile_image(video[index], SINGLE_TILE).pixel_values[0]
        assert torch.allclose(frames.pixel_values[row], expected, atol=1e-6)


def test_frames_match_reference_single_tile_processing():
    transformers = pytest.importorskip("transformers")
    rng = np.random.default_rng(3)
    video = rng.integers(0, 256, (5, 240, 320, 3), dtype=np.uint8)
    reference = transformers.GotOcr2ImageProcessorPil(
        size={"height": 448, "width": 448},
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
        crop_to_patches=False,
    )
    expected = reference(list(video), return_tensors="pt")["pixel_values"]
    ours = preprocess_video(video, num_frames=8).pixel_values
    assert torch.allclose(ours, expected, atol=1e-5, rtol=0)


def test_frame_sequences_and_tensors_are_videos():
    video = gray_video(40)
    as_list, _ = select_frames(list(video), 4)
    as_tensor, _ = select_frames(torch.from_numpy(video), 4)
    as_array, _ = select_frames(video, 4)
    assert len(as_list) == 4
    assert np.array_equal(np.stack(as_list), as_array)
    assert np.array_equal(as_tensor, as_array)
    with pytest.raises(ValueError):
        select_frames(video[0], 4)


def test_video_list_detection():
    video = gray_video(6)
    assert len(as_video_list(video)) == 1
    assert len(as_video_list([video, video])) == 2
    assert len(as_video_list(list(video))) == 1
    assert len(as_video_list(["a.mp4", "b.mp4"])) == 2
    assert as_video_list(None) == []


def test_video_processor_caps_frames_whatever_the_config_says():
    published = {
        "do_sample_frames": False,
        "num_frames": None,
        "size": {"height": 448, "width": 448},
    }
    processor = InternS1VideoProcessor(**published)
    assert processor.num_frames == DEFAULT_NUM_FRAMES
    out = processor([gray_video(500), gray_video(7)])
    assert out["video_num_frames"].tolist() == [32, 7]
    assert out["pixel_values_videos"].shape == (39, 3, 448, 448)
    assert processor(gray_video(500), num_frames=4)["video_num_frames"].tolist() == [4]


class RecordingReader:
    """Wraps decord's reader and records what is decoded."""

    instances: list[RecordingReader] = []

    def __init__(self, real_class, *args, **kwargs):
        self.real = real_class(*args, **kwargs)
        self.batches: list[list[int]] = []
        RecordingReader.instances.append(self)

    def __len__(self) -> int:
        return len(self.real)

    def get_batch(self, indices):
        self.batches.append(list(indices))
        return self.real.get_batch(indices)

    def __getitem__(self, index):
        raise AssertionError("frames must be fetched with get_batch, not one by one")


def test_video_file_decodes_only_sampled_frames(tmp_path, monkeypatch):
    decord = pytest.importorskip("decord")
    video = gray_video(240)
    path = write_video_file(tmp_path / "ramp.avi", video)

    real = decord.VideoReader
    RecordingReader.instances.clear()
    monkeypatch.setattr(decord, "VideoReader", lambda *a, **k: RecordingReader(real, *a, **k))
    frames = preprocess_video(path, num_frames=8)

    (reader,) = RecordingReader.instances
    assert reader.batches == [sample_indices(240, 8).tolist()]
    assert frames.num_frames == 8
    # Each decoded frame is the grey level of its own index (the codec is lossy: +-4 levels).
    decoded, _ = select_frames(path, 8)
    assert (
        np.abs(decoded.astype(int).mean(axis=(1, 2, 3)) - video[frames.indices, 0, 0, 0]).max() <= 4
    )


def test_video_file_shorter_than_the_cap_keeps_every_frame(tmp_path):
    pytest.importorskip("decord")
    path = write_video_file(tmp_path / "short.avi", gray_video(5))
    frames = preprocess_video(path)
    assert frames.num_frames == 5
    assert frames.indices.tolist() == [0, 1, 2, 3, 4]
