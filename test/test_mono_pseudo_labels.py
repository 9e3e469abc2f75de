"""`dro-depth pseudo-label`: a teacher's labels for a real bag / folder, written, read back and reused."""
import json

import numpy as np
import pytest
import torch

from dro_depth.cli import main as cli_main
from dro_depth.data.bag_writer import write_sequence_bag
from dro_depth.data.bags import read_bag
from dro_depth.data.folders import write_folder
from dro_depth.data.pseudo_labels import (PseudoLabelDataset, PseudoLabelError, PseudoLabelWriter,
                                          load_pseudo_label, read_pseudo_labels)
from dro_depth.data.synthetic import generate_sequence
from dro_depth.models.mono_light import LightRelativeDepth, save_light_relative
from dro_depth.mono.teacher import load_teacher


@pytest.fixture(scope='module')
def seq():
    return generate_sequence('indoor', seed=3, n_frames=3, height=48, width=64)


@pytest.fixture(scope='module')
def teacher_file(tmp_path_factory):
    torch.manual_seed(0)
    model = LightRelativeDepth(width=16, img_size=(64, 64))
    with torch.no_grad():                     # a positive output (a fresh ReLU head can be all zero)
        model.core.decoder.output_conv[4].bias.fill_(1.0)
    return save_light_relative(model, tmp_path_factory.mktemp('teacher') / 'teacher.safetensors')


def _run(capsys, argv):
    code = cli_main(argv)
    return code, capsys.readouterr()


def test_bag_round_trip(tmp_path, capsys, seq, teacher_file):
    bag = write_sequence_bag(seq, tmp_path / 'bag')
    out = tmp_path / 'pl'
    code, cap = _run(capsys, ['pseudo-label', '--teacher', str(teacher_file), '--bag', str(bag),
                              '--out', str(out), '--device', 'cpu'])
    assert code == 0, cap.err
    index = read_pseudo_labels(out)
    assert index['teacher']['kind'] == 'light_relative' and len(index['entries']) == len(seq)
    teacher = load_teacher(teacher_file, device='cpu')
    frames = list(read_bag(bag, camera_info_topic=None, K=np.eye(3)))
    for entry, frame in zip(index['entries'], frames):
        assert entry['source'] == str(bag) and entry['frame'] == frame.index
        assert entry['stamp_ns'] == frame.stamp_ns
        image, label = load_pseudo_label(out, entry)
        np.testing.assert_array_equal(image, frame.image)
        assert label.dtype == np.float32 and label.shape == (48, 64)
        np.testing.assert_allclose(label, teacher(frame.image), rtol=1e-6, atol=1e-7)
        assert (out / entry['preview']).is_file()
    # read back for training at another size
    ds = PseudoLabelDataset([out], 32, 64)
    item = ds[1]
    assert item['image'].shape == (3, 32, 64) and item['label'].shape == (1, 32, 64)
    # rewriting needs --overwrite; --every / --max-images select frames
    code, cap = _run(capsys, ['pseudo-label', '--teacher', str(teacher_file), '--bag', str(bag), '--out', str(out)])
    assert code == 2 and 'not empty' in cap.err
    code, cap = _run(capsys, ['pseudo-label', '--teacher', str(teacher_file), '--bag', str(bag), '--out', str(out),
                              '--overwrite', '--every', '2', '--device', 'cpu'])
    assert code == 0 and [e['frame'] for e in read_pseudo_labels(out)['entries']] == [0, 2]


def test_folder_with_a_metric_teacher(tmp_path, capsys, seq):
    folder = write_folder(seq, tmp_path / 'imgs')
    out = tmp_path / 'pl'
    code, cap = _run(capsys, ['pseudo-label', '--teacher', 'dro_depth/weights/metric_default.safetensors',
                              '--folder', str(folder), '--out', str(out), '--max-images', '2', '--device', 'cpu'])
    assert code == 0, cap.err
    index = json.loads((out / 'index.json').read_text())
    assert index['teacher']['kind'] == 'light_metric' and len(index['entries']) == 2
    _, label = load_pseudo_label(out, index['entries'][0])
    # inverse metric depth: positive, nearer (bottom of a room view: the floor) larger than the far wall
    assert np.all(label > 0) and label[-4:].mean() > label[20:28].mean()


def test_writer_and_reader_errors(tmp_path):
    with pytest.raises(PseudoLabelError, match='no index.json'):
        read_pseudo_labels(tmp_path)
    with PseudoLabelWriter(tmp_path / 'w', {'kind': 'test'}) as w:
        w.add(np.zeros((4, 5, 3), np.uint8), np.ones((4, 5), np.float32), 'x', 0, 1)
        with pytest.raises(PseudoLabelError, match='does not match'):
            w.add(np.zeros((4, 5, 3), np.uint8), np.ones((5, 4), np.float32), 'x', 1, 2)
    (tmp_path / 'w' / 'labels' / '000000.npy').unlink()
    with pytest.raises(PseudoLabelError, match='missing'):
        read_pseudo_labels(tmp_path / 'w')


@pytest.mark.parametrize('argv, needle', [
    (['--teacher', 'nope.safetensors', '--folder', '.'], 'checkpoint not found'),
    (['--teacher', 'setup.py', '--folder', '.'], 'setup.py'),
    (['--teacher', 'dro_depth/weights/metric_default.safetensors'], 'at least one --bag or --folder'),
    (['--teacher', 'dro_depth/weights/metric_default.safetensors', '--bag', 'no_such_bag'], 'no_such_bag'),
    (['--teacher', 'dro_depth/weights/metric_default.safetensors', '--folder', 'test', '--every', '0'],
     '--every'),
])
def test_bad_inputs_give_one_line_and_exit_2(tmp_path, capsys, argv, needle):
    code, cap = _run(capsys, ['pseudo-label', *argv, '--out', str(tmp_path / 'o'), '--device', 'cpu'])
    lines = cap.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and needle in lines[0], cap.err
    assert not (tmp_path / 'o' / 'index.json').exists()


def test_a_file_that_is_no_teacher_of_any_kind(tmp_path, capsys):
    from safetensors.torch import save_file

    save_file({'encoder.weight': torch.zeros(2)}, str(tmp_path / 'foreign.safetensors'))
    code, cap = _run(capsys, ['pseudo-label', '--teacher', str(tmp_path / 'foreign.safetensors'), '--folder', 'test',
                              '--out', str(tmp_path / 'o'), '--device', 'cpu'])
    lines = cap.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and 'not a Depth Anything V2 state dict' in lines[0]


def test_a_bag_without_the_image_topic(tmp_path, capsys, seq, teacher_file):
    bag = write_sequence_bag(seq, tmp_path / 'bag')
    code, cap = _run(capsys, ['pseudo-label', '--teacher', str(teacher_file), '--bag', str(bag),
                              '--image-topic', '/cam/none', '--out', str(tmp_path / 'o'), '--device', 'cpu'])
    lines = cap.err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and '/cam/none' in lines[0]
    assert not (tmp_path / 'o').exists()
