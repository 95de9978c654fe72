"""Intern-S1-Pro video preprocessing: Qwen3-VL's frame sampling, sizes, patches, times and prompt.

Counts, indices, sizes and timestamps are checked against values worked out by hand; patches
against a slow reference written here with explicit loops; a real file is written with OpenCV
(or PyAV) and decoded with decord.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
PIL_Image = pytest.importorskip("PIL.Image")

from interns1_plugin.formats import VIDEO_PAD, VISION_END, VISION_START  # noqa: E402
from interns1_plugin.processing import pro_video  # noqa: E402
from interns1_plugin.processing.pro_video import (  # noqa: E402
    DEFAULT_VIDEO_FPS,
    count_video_tokens,
    load_video_frames,
    preprocess_video,
    sample_video_frames,
    smart_resize_video,
    video_grid,
    video_prompt,
    video_timestamps,
)
from interns1_plugin.processing.pro_vision import DEFAULT_PRO_VISION, ProVisionConfig  # noqa: E402

GROUP_4 = VISION_START + VIDEO_PAD * 4 + VISION_END


def random_frames(count: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), dtype=np.uint8)


def grey_video(count: int, height: int = 64, width: int = 96) -> np.ndarray:
    """Frame i is a flat grey whose level rises with i, so a decoded frame tells its index."""
    levels = np.linspace(0, 255, count).round().astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (count, height, width, 3)).copy()


def write_video_file(path: Path, frames: np.ndarray, fps: int) -> Path:
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


def normalised(pixels: np.ndarray) -> np.ndarray:
    """uint8 -> float64 `(x / 255 - 0.5) / 0.5`, Intern-S1-Pro's statistics, the textbook way."""
    return (pixels.astype(np.float64) / 255.0 - 0.5) / 0.5


def reference_patches(frames: np.ndarray, p: int = 16, m: int = 2, tp: int = 2) -> np.ndarray:
    """Slow reference: row ((t * gh/m + bh) * gw/m + bw) * m * m + ih * m + iw holds, channel by
    channel and frame by frame of group t, the P x P patch at patch row bh*m+ih, column bw*m+iw;
    the last frame is repeated to fill the last group."""
    frames = list(frames)
    while len(frames) % tp:
        frames.append(frames[-1])
    height, width = frames[0].shape[:2]
    gt, gh, gw = len(frames) // tp, height // p, width // p
    rows = np.zeros((gt * gh * gw, 3 * tp * p * p))
    for t in range(gt):
        for bh in range(gh // m):
            for bw in range(gw // m):
                for ih in range(m):
                    for iw in range(m):
                        row = ((t * (gh // m) + bh) * (gw // m) + bw) * m * m + ih * m + iw
                        y, x = (bh * m + ih) * p, (bw * m + iw) * p
                        values = []
                        for c in range(3):
                            for k in range(tp):
                                patch = frames[t * tp + k][y : y + p, x : x + p, c]
                                values.extend(patch.reshape(-1).tolist())
                        rows[row] = values
    return rows


# --- frame sampling ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "video_fps", "expected"),
    [
        (30, 30.0, [0, 10, 19, 29]),  # 1 s -> 2 frames, raised to min_frames 4
        (3, 30.0, [0, 1, 2]),  # fewer frames than min_frames: all of them
        (100, 29.97, [0, 20, 40, 59, 79, 99]),  # 3.34 s x 2 = 6.67 -> 6
        (40, 10.0, [0, 6, 11, 17, 22, 28, 33, 39]),  # 4 s -> 8
    ],
)
def test_fps_sampling_hand_computed(total, video_fps, expected):
    assert sample_video_frames(total, video_fps).tolist() == expected


@pytest.mark.parametrize(
    ("total", "video_fps", "fps", "count"),
    [
        (300, 30.0, None, 20),  # 10 s at 2 fps
        (180, 24.0, None, 15),  # 7.5 s: odd counts are kept (padded when patched)
        (300, 30.0, 0.5, 5),
        (300, 30.0, 4.0, 40),
        (240, None, None, 20),  # unknown rate: 24 fps assumed -> 10 s
        (18_000, 30.0, None, 768),  # 10 min -> 1200, capped at max_frames
        (10**7, 30.0, None, 768),
    ],
)
def test_fps_sampling_counts(total, video_fps, fps, count):
    indices = sample_video_frames(total, video_fps, fps=fps)
    assert len(indices) == count
    assert indices[0] == 0 and indices[-1] == total - 1
    assert np.all(np.diff(indices) > 0)


def test_sampling_rounds_halves_to_even_and_takes_explicit_counts():
    # linspace(0, 299, 5) = 0, 74.75, 149.5, 224.25, 299
    assert sample_video_frames(300, 30.0, fps=0.5).tolist() == [0, 75, 150, 224, 299]
    few = ProVisionConfig(min_frames=1)
    # linspace(0, 5, 3) = 0, 2.5, 5: 2.5 -> 2
    assert sample_video_frames(6, 24.0, few, num_frames=3).tolist() == [0, 2, 5]
    eight = [0, 14, 28, 42, 57, 71, 85, 99]  # k * 99 / 7
    assert sample_video_frames(100, 30.0, num_frames=8).tolist() == eight
    assert len(sample_video_frames(100, 30.0, num_frames=2)) == 4  # held to min_frames
    assert len(sample_video_frames(500, 30.0, num_frames=1000)) == 500  # and to the video
    assert len(sample_video_frames(5000, 30.0, num_frames=1000)) == 768  # and to max_frames
    assert DEFAULT_VIDEO_FPS == 24.0
    unknown = sample_video_frames(240, float("nan"))
    assert unknown.tolist() == sample_video_frames(240, 24.0).tolist()


def test_sampling_errors():
    with pytest.raises(ValueError, match="mutually exclusive"):
        sample_video_frames(100, 30.0, num_frames=8, fps=2.0)
    with pytest.raises(ValueError, match="at least one frame"):
        sample_video_frames(0, 30.0)
    with pytest.raises(ValueError, match="num_frames must be positive"):
        sample_video_frames(100, 30.0, num_frames=0)
    with pytest.raises(ValueError, match="fps must be positive"):
        sample_video_frames(100, 30.0, fps=0.0)


# --- timestamps --------------------------------------------------------------------------------


def test_timestamps_are_group_means():
    # (0 + 10/30) / 2 and (19/30 + 29/30) / 2
    assert video_timestamps([0, 10, 19, 29], 30.0) == pytest.approx([1 / 6, 0.8])
    # an odd count repeats the last index: (11 + 11) / 2 / 10
    assert video_timestamps([0, 6, 11], 10.0) == pytest.approx([0.3, 1.1])
    assert video_timestamps([0, 3, 6, 9, 12], 6.0) == pytest.approx([0.25, 1.25, 2.0])
    assert video_timestamps([24, 48], None) == pytest.approx([1.5])  # 24 fps assumed
    assert video_timestamps([0, 1, 2, 3, 4, 5], 1.0, temporal_patch_size=3) == pytest.approx(
        [1.0, 4.0]
    )


# --- frame size --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frames", "height", "width", "expected"),
    [
        (4, 64, 96, (64, 96)),  # multiples, 4 x 6144 = 24576 within bounds
        (4, 100, 150, (96, 160)),  # 3.125 -> 3, 4.6875 -> 5 blocks
        (20, 1080, 1920, (832, 1472)),  # 41.8M > 25.2M: beta 1.2837 -> floor 26 and 46 blocks
        (4, 10, 100, (32, 320)),  # thin side below 32: scaled x3.2 first
        (2, 32, 32, (64, 64)),  # 2048 < 4096: beta sqrt(2) -> ceil 2 blocks each way
        (768, 720, 1280, (128, 224)),  # 768 frames of 720p: beta 5.303 -> 4 and 7 blocks
    ],
)
def test_video_smart_resize_hand_computed(frames, height, width, expected):
    assert smart_resize_video(frames, height, width) == expected


def test_video_smart_resize_uses_rounded_frames_for_the_test_and_real_ones_for_the_scale():
    budget = 4 * 320 * 320
    # 5 frames round (half to even) to 4: exactly the budget, no shrink.
    assert smart_resize_video(5, 320, 320, 32, 2, 4096, budget) == (320, 320)
    # 7 frames round to 8: over budget; beta = sqrt(7 / 4) = 1.3229 -> floor 7.56 -> 7 blocks
    assert smart_resize_video(7, 320, 320, 32, 2, 4096, budget) == (224, 224)


def test_video_smart_resize_errors():
    with pytest.raises(ValueError, match="at least 2 frames"):
        smart_resize_video(1, 64, 64)
    with pytest.raises(ValueError, match="aspect ratio must be smaller than 200"):
        smart_resize_video(4, 1, 300)  # scaled to 32 x 9600 first
    with pytest.raises(ValueError, match="must be positive"):
        smart_resize_video(4, 0, 64)


def test_token_counts():
    assert video_grid(20, 1080, 1920) == (10, 52, 92)
    assert count_video_tokens(20, 1080, 1920) == 10 * 52 * 92 // 4 == 11960
    assert video_grid(5, 64, 96) == (3, 4, 6)
    assert count_video_tokens(5, 64, 96) == 18


def test_sizes_and_sampling_agree_with_transformers_qwen3_vl():
    module = pytest.importorskip("transformers.models.qwen3_vl.video_processing_qwen3_vl")
    metadata = pytest.importorskip("transformers.video_utils").VideoMetadata
    rng = np.random.default_rng(9)
    sizes = [tuple(int(v) for v in pair) for pair in rng.integers(1, 4000, (200, 2))]
    sizes += [(h, w) for h in (1, 10, 31, 32, 33) for w in (1, 32, 300, 6400)]
    for height, width in sizes:
        for frames in (2, 3, 5, 20, 768):
            try:
                expected = module.smart_resize(frames, height, width, 2, 32, 4096, 25165824)
            except ValueError:
                with pytest.raises(ValueError):
                    smart_resize_video(frames, height, width)
            else:
                assert smart_resize_video(frames, height, width) == expected, (height, width)
    processor = module.Qwen3VLVideoProcessor()
    for total in [*range(1, 60, 7), 1000, 18_000, 99_999]:
        for video_fps in (10.0, 23.976, 30.0):
            for fps in (0.5, 2, 3.3):
                info = metadata(total_num_frames=total, fps=video_fps)
                expected = processor.sample_frames(info, fps=fps)
                assert sample_video_frames(total, video_fps, fps=fps).tolist() == list(expected)


# --- decoded frames ----------------------------------------------------------------------------


def test_presampled_frames_patch_in_real_pairs():
    frames = random_frames(5, 64, 96, seed=1)  # no resize: within bounds, multiples of 32
    out = preprocess_video(frames, video_fps=6.0, frame_indices=[0, 3, 6, 9, 12])
    assert out.video_grid_thw.tolist() == [[3, 4, 6]]
    assert out.video_grid_thw.dtype == torch.int64
    assert out.pixel_values_videos.dtype == torch.float32
    assert out.timestamps == pytest.approx([0.25, 1.25, 2.0])
    np.testing.assert_allclose(
        out.pixel_values_videos.numpy(), reference_patches(normalised(frames)), atol=1e-6
    )


def test_resized_frames_match_a_direct_bicubic_resize():
    frames = random_frames(4, 100, 150, seed=2)
    out = preprocess_video(frames, frame_indices=range(4))
    resized = np.stack(
        [
            np.asarray(PIL_Image.fromarray(f).resize((160, 96), PIL_Image.Resampling.BICUBIC))
            for f in frames
        ]
    )
    assert out.video_grid_thw.tolist() == [[2, 6, 10]]
    np.testing.assert_allclose(
        out.pixel_values_videos.numpy(), reference_patches(normalised(resized)), atol=1e-6
    )


def test_arrays_are_sampled_by_their_rate():
    frames = grey_video(60, 64, 64)  # 6 s at 10 fps -> 12 frames
    sampled = load_video_frames(frames, video_fps=10.0)
    assert sampled.indices.tolist() == [0, 5, 11, 16, 21, 27, 32, 38, 43, 48, 54, 59]
    assert sampled.video_fps == 10.0
    assert np.array_equal(sampled.frames, frames[sampled.indices])
    out = preprocess_video(frames, video_fps=10.0)
    assert out.video_grid_thw.tolist() == [[6, 4, 4]]
    # pairs (0, 5), (11, 16), (21, 27), (32, 38), (43, 48), (54, 59) at 10 fps
    assert out.timestamps == pytest.approx([0.25, 1.35, 2.4, 3.5, 4.55, 5.65])


def test_tensors_and_frame_lists_agree_with_arrays():
    frames = random_frames(6, 40, 70, seed=3)
    expected = preprocess_video(frames, video_fps=2.0)
    for source in (
        torch.from_numpy(frames),
        torch.from_numpy(frames).permute(0, 3, 1, 2),  # (T, C, H, W)
        list(frames),
        [PIL_Image.fromarray(f) for f in frames],
    ):
        out = preprocess_video(source, video_fps=2.0)
        assert torch.equal(out.pixel_values_videos, expected.pixel_values_videos)
        assert torch.equal(out.video_grid_thw, expected.video_grid_thw)
        assert out.timestamps == expected.timestamps


def test_decoded_input_errors():
    frames = random_frames(4, 32, 32)
    with pytest.raises(ValueError, match="already sampled"):
        preprocess_video(frames, frame_indices=range(4), num_frames=4)
    with pytest.raises(ValueError, match="more than max_frames"):
        preprocess_video(
            frames, ProVisionConfig(min_frames=2, max_frames=3), frame_indices=range(4)
        )
    with pytest.raises(ValueError, match="3 frame_indices for 4 frames"):
        preprocess_video(frames, frame_indices=[0, 1, 2])
    with pytest.raises(ValueError, match="at least 2 frames"):
        preprocess_video(frames[:1])
    with pytest.raises(ValueError, match=r"\(T, H, W, C\)"):
        preprocess_video(frames[0])
    with pytest.raises(ValueError, match="at least one frame"):
        preprocess_video([])
    with pytest.raises(ValueError, match="video frame is empty"):
        preprocess_video(np.zeros((4, 0, 32, 3), dtype=np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        preprocess_video(np.zeros((4, 32, 32, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="one size"):
        preprocess_video([frames[0], frames[1], random_frames(1, 48, 32)[0], frames[3]])


# --- files -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def video_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 grey frames of 96x64 at 10 fps: 4 seconds."""
    path = tmp_path_factory.mktemp("pro_video") / "grey.avi"
    return write_video_file(path, grey_video(40), fps=10)


def test_file_is_sampled_decoded_and_timed(video_file):
    pytest.importorskip("decord")
    sampled = load_video_frames(video_file)
    assert sampled.indices.tolist() == [0, 6, 11, 17, 22, 28, 33, 39]
    assert sampled.video_fps == pytest.approx(10.0)
    assert sampled.frames.shape == (8, 64, 96, 3)
    levels = grey_video(40)[sampled.indices, 0, 0, 0].astype(int)
    decoded = sampled.frames.reshape(8, -1).mean(axis=1)
    assert np.all(np.abs(decoded - levels) <= 6)  # JPEG-coded greys, each its own frame

    out = preprocess_video(video_file)
    assert out.video_grid_thw.tolist() == [[4, 4, 6]]
    assert tuple(out.pixel_values_videos.shape) == (96, 1536)
    assert out.timestamps == pytest.approx([0.3, 1.4, 2.5, 3.6])
    np.testing.assert_allclose(
        out.pixel_values_videos.numpy(), reference_patches(normalised(sampled.frames)), atol=1e-6
    )
    group = VISION_START + VIDEO_PAD * 6 + VISION_END
    assert video_prompt(out.video_grid_thw[0], out.timestamps) == (
        f"<0.3 seconds>{group}<1.4 seconds>{group}<2.5 seconds>{group}<3.6 seconds>{group}"
    )


def test_file_inputs_agree_and_take_sampling_options(video_file, monkeypatch):
    pytest.importorskip("decord")
    expected = preprocess_video(video_file)
    data = video_file.read_bytes()
    for source in (str(video_file), data, io.BytesIO(data)):
        assert torch.equal(
            preprocess_video(source).pixel_values_videos, expected.pixel_values_videos
        )
    # decoding three frames at a time, or one, changes nothing
    monkeypatch.setattr(pro_video, "DECODE_BUDGET", 3 * 64 * 96 * 3)
    assert torch.equal(
        preprocess_video(video_file).pixel_values_videos, expected.pixel_values_videos
    )
    monkeypatch.setattr(pro_video, "DECODE_BUDGET", 1)
    assert torch.equal(
        preprocess_video(video_file).pixel_values_videos, expected.pixel_values_videos
    )
    assert load_video_frames(video_file, num_frames=4).indices.tolist() == [0, 13, 26, 39]
    assert load_video_frames(video_file, fps=1.0).indices.tolist() == [0, 13, 26, 39]
    assert len(load_video_frames(video_file, fps=10.0).indices) == 40


def test_bad_files_raise_value_error(video_file):
    pytest.importorskip("decord")
    with pytest.raises(ValueError, match="empty"):
        preprocess_video(b"")
    with pytest.raises(ValueError, match="could not be decoded"):
        preprocess_video(b"\x00" * 4096)
    with pytest.raises(ValueError, match="a file is sampled here"):
        preprocess_video(video_file, frame_indices=[0, 1])


# --- prompt ------------------------------------------------------------------------------------


def test_video_prompt_layout():
    assert video_prompt((2, 4, 4), [0.25, 1.0]) == (
        f"<0.2 seconds>{GROUP_4}<1.0 seconds>{GROUP_4}"  # 0.25 formats as 0.2, as Python does
    )
    assert video_prompt(torch.tensor([1, 2, 2]), [12.34]) == (
        "<12.3 seconds><|vision_start|><|video_pad|><|vision_end|>"
    )
    assert video_prompt((1, 6, 6), [0.0], merge_size=3) == f"<0.0 seconds>{GROUP_4}"
    with pytest.raises(ValueError, match="2 timestamps for 3 temporal groups"):
        video_prompt((3, 4, 4), [0.0, 1.0])


def test_default_config_is_shared():
    assert pro_video.DEFAULT_PRO_VISION is DEFAULT_PRO_VISION
