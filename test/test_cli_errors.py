"""Every `dro-depth` user error ends with one clear line on stderr and exit code 2, no traceback."""
import pytest

from dro_depth import cli


def _run(capsys, argv):
    code = cli.main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith('dro-depth')]
    return code, err, lines


@pytest.fixture(scope='module')
def bag(tmp_path_factory):
    pytest.importorskip('rosbags', reason='rosbags writes the bag')
    from dro_depth.data.bag_writer import write_sequence_bag
    from dro_depth.data.synthetic import generate_sequence
    seq = generate_sequence('indoor', seed=2, n_frames=3, height=32, width=48)
    return write_sequence_bag(seq, tmp_path_factory.mktemp('bag') / 'seq')


def test_train_with_a_topic_the_bag_lacks(tmp_path, capsys, bag):
    cfg = tmp_path / 'train.yaml'
    cfg.write_text(f'mode: self_supervised\nsteps: 1\ndata:\n  source: bag\n  paths: ["{bag}"]\n'
                   '  image_topic: /no/such/image\n')
    code, err, lines = _run(capsys, ['train', '--config', str(cfg), '--out', str(tmp_path / 'out')])
    assert code == 2 and 'Traceback' not in err
    assert len(lines) == 1 and lines[0].startswith('dro-depth train: error:') and '/no/such/image' in lines[0]
    assert '/image (sensor_msgs/msg/Image)' in lines[0]   # the message lists the topics the bag has


@pytest.mark.parametrize('text,needle', [
    ('mode: [unclosed\n', 'bad.yaml'),                  # not YAML
    ('- a list\n', 'mapping'),                         # YAML, but not a config
    ('no_such_key: 1\n', 'no_such_key'),               # unknown key
    ('mode: sideways\n', 'sideways'),                  # a value the recipe refuses
])
def test_train_with_a_bad_config(tmp_path, capsys, text, needle):
    cfg = tmp_path / 'bad.yaml'
    cfg.write_text(text)
    code, err, lines = _run(capsys, ['train', '--config', str(cfg), '--out', str(tmp_path / 'out')])
    assert code == 2 and 'Traceback' not in err and len(lines) == 1 and needle in lines[0], err


def test_missing_paths(tmp_path, capsys):
    missing = str(tmp_path / 'none.yaml')
    code, err, lines = _run(capsys, ['train', '--config', missing, '--out', str(tmp_path)])
    assert code == 2 and len(lines) == 1 and 'none.yaml' in lines[0] and 'Traceback' not in err
    code, err, lines = _run(capsys, ['eval', '--bag', str(tmp_path / 'nobag'), '--image-topic', '/i',
                                     '--camera-info-topic', '/c', '--out', str(tmp_path / 'o')])
    assert code == 2 and 'nobag' in err and 'Traceback' not in err
