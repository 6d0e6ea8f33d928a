"""Loading official, timm and mmevit checkpoints into the backbone."""
import functools
import http.server
import os
import threading

import pytest
import torch

from mmevit.checkpoint import CheckpointError
from mmevit.models.backbones import (
    EfficientViT,
    convert_efficientvit_state_dict,
    load_pretrained_backbone,
    official_key_to_mmevit,
    resize_attention_biases,
)
from tests.helpers import (
    Payload,
    official_backbone,
    official_loaded_state,
    randomize_weights,
)

ARCHS = sorted(EfficientViT.arch_zoo)


def official_imagenet_checkpoint(arch, seed=0):
    """A checkpoint laid out like the released ``efficientvit_mX.pth``:
    {'model': ...} with heads, bias indices and 4x4 stage-3 bias tables."""
    ref = official_backbone(arch, window_size=(7, 7, 4), seed=seed)
    state = dict(ref.state_dict())
    dim = EfficientViT.arch_zoo[arch]['embed_dims'][2]
    state.update({'head.bn.weight': torch.ones(dim),
                  'head.l.weight': torch.randn(1000, dim),
                  'head.l.bias': torch.zeros(1000)})
    return {'model': state}


@pytest.mark.parametrize('key, expected', [
    ('patch_embed.0.c.weight', 'patch_embed.conv1.conv.weight'),
    ('patch_embed.6.bn.running_var', 'patch_embed.conv4.bn.running_var'),
    ('blocks1.0.dw0.m.c.weight', 'stages.0.blocks.0.dw0.m.conv.weight'),
    ('blocks2.0.1.m.pw1.c.weight',
     'stages.1.downsample.res1.1.m.pw1.conv.weight'),
    ('blocks2.1.se.fc1.weight', 'stages.1.downsample.patchmerge.se.fc1.weight'),
    ('blocks3.2.0.m.bn.bias', 'stages.2.downsample.res2.0.m.bn.bias'),
    ('blocks3.4.mixer.m.attn.qkvs.0.c.weight',
     'stages.2.blocks.1.mixer.m.attn.qkvs.0.conv.weight'),
    ('blocks1.0.mixer.m.attn.proj.1.c.weight',
     'stages.0.blocks.0.mixer.m.attn.proj.1.conv.weight'),
])
def test_official_key_names(key, expected):
    assert official_key_to_mmevit(key) == expected


def test_bias_resize_matches_official_init_weights(tmp_path):
    """The 4x4 last-stage tables of a classification checkpoint become, at
    window 7, what the official downstream ``init_weights`` makes of them."""
    path = tmp_path / 'efficientvit_m0.pth'
    state = official_imagenet_checkpoint('m0', seed=5)['model']
    torch.save({'model': state}, path)
    reference = official_loaded_state('m0', path, window_size=(7, 7, 7))
    tables = [k for k in state if k.startswith('blocks3.')
              and k.endswith('attention_biases')]
    assert tables
    for key in tables:
        assert state[key].shape[1] == 16
        torch.testing.assert_close(resize_attention_biases(state[key], 7),
                                   reference[key], rtol=0, atol=0)
    table = state[tables[0]]
    assert resize_attention_biases(table, 4) is table
    with pytest.raises(ValueError, match='square'):
        resize_attention_biases(torch.randn(4, 15), 7)


def test_mmengine_detector_checkpoint_with_backbone_prefix(tmp_path):
    model = EfficientViT(arch='m2')
    weights = randomize_weights(model, seed=3)
    full = {f'backbone.{k}': v for k, v in weights.items()}
    full['neck.lateral_convs.0.conv.weight'] = torch.zeros(1)
    path = tmp_path / 'detector.pth'
    torch.save({'meta': {'epoch': 12}, 'state_dict': full}, path)
    fresh = EfficientViT(arch='m2')
    load_pretrained_backbone(fresh, str(path))
    for key, value in weights.items():
        torch.testing.assert_close(fresh.state_dict()[key], value)


def test_window_resize_on_direct_load():
    """A state dict for window 7 loads into a model with larger windows."""
    weights = randomize_weights(EfficientViT(arch='m4'))
    model = EfficientViT(arch='m4', window_sizes=[7, 7, 14])
    model.load_state_dict(weights)
    table = model.stages[2].blocks[0].mixer.m.attn.attention_biases
    expected = resize_attention_biases(
        weights['stages.2.blocks.0.mixer.m.attn.attention_biases'], 14)
    torch.testing.assert_close(table.detach(), expected)


def test_wrong_arch_is_named(tmp_path):
    path = tmp_path / 'efficientvit_m5.pth'
    torch.save(official_imagenet_checkpoint('m5'), path)
    with pytest.raises(CheckpointError,
                       match='looks like m5, the config asks for m4'):
        load_pretrained_backbone(EfficientViT(arch='m4'), str(path))


def m0_backbone(form):
    """An m0 backbone built unfused, built fused (``deploy=True``) or
    switched to its fused form after building."""
    model = EfficientViT(arch='m0', deploy=form == 'built fused')
    if form == 'switched to deploy':
        model.switch_to_deploy()
    return model


@pytest.mark.parametrize('form', ['unfused', 'built fused',
                                  'switched to deploy'])
def test_missing_keys_are_named(tmp_path, form):
    state = official_imagenet_checkpoint('m0')['model']
    del state['blocks2.1.conv1.c.weight']
    path = tmp_path / 'partial.pth'
    torch.save({'model': state}, path)
    with pytest.raises(CheckpointError, match=r'missing keys: '
                       r'stages\.1\.downsample\.patchmerge\.conv1\.conv\.weight'):
        load_pretrained_backbone(m0_backbone(form), str(path))


@pytest.mark.parametrize('form', ['built fused', 'switched to deploy'])
def test_fused_backbone_loads_an_unfused_checkpoint(tmp_path, form):
    path = tmp_path / 'efficientvit_m0.pth'
    torch.save(official_imagenet_checkpoint('m0'), path)
    fused, unfused = m0_backbone(form).eval(), EfficientViT(arch='m0').eval()
    load_pretrained_backbone(fused, str(path))
    load_pretrained_backbone(unfused, str(path))
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        for a, b in zip(fused(x), unfused(x)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('count', [5, 6])
def test_long_key_lists_are_cut_after_five(tmp_path, count):
    state = official_imagenet_checkpoint('m0')['model']
    stem = [k for k in state if k.startswith('patch_embed.')][:count]
    for key in stem:
        del state[key]
    path = tmp_path / 'partial.pth'
    torch.save({'model': state}, path)
    with pytest.raises(CheckpointError) as info:
        load_pretrained_backbone(EfficientViT(arch='m0'), str(path))
    named = sorted(official_key_to_mmevit(k) for k in stem)[:5]
    listed = f'{count} missing keys: ' + ', '.join(named)
    more = ' ... (+1 more)' if count == 6 else ''
    assert listed + more + ';' in str(info.value) + ';'


def test_truncated_file_error_names_the_readers_error(tmp_path):
    path = tmp_path / 'efficientvit_m0.pth'
    torch.save(official_imagenet_checkpoint('m0'), path)
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(Exception) as reader:  # torch's own words for it
        torch.load(path, weights_only=True)
    with pytest.raises(CheckpointError) as info:
        load_pretrained_backbone(EfficientViT(arch='m0'), str(path))
    message = str(info.value)
    first_line = str(reader.value).strip().splitlines()[0]
    assert message.startswith(
        f'{path} is corrupt, truncated or not a PyTorch checkpoint '
        f'({type(reader.value).__name__}: {first_line[:20]}')
    assert message.endswith(')') and '\n' not in message


def test_missing_and_unexpected_keys_are_one_line(tmp_path):
    state = official_imagenet_checkpoint('m0')['model']
    state['blocks1.0.extra.weight'] = state.pop('blocks1.0.dw0.m.c.weight')
    path = tmp_path / 'renamed.pth'
    torch.save({'model': state}, path)
    with pytest.raises(CheckpointError) as info:
        load_pretrained_backbone(EfficientViT(arch='m0'), str(path))
    assert str(info.value) == (
        f'{path} does not fit EfficientViT arch m0: 1 missing keys: '
        'stages.0.blocks.0.dw0.m.conv.weight; 1 unexpected keys: '
        'stages.0.blocks.0.extra.weight')


def test_unexpected_keys_are_named(tmp_path):
    state = official_imagenet_checkpoint('m0')['model']
    state['blocks1.0.extra.weight'] = torch.zeros(3)
    path = tmp_path / 'extra.pth'
    torch.save({'model': state}, path)
    with pytest.raises(CheckpointError, match=r'unexpected keys: '
                       r'stages\.0\.blocks\.0\.extra\.weight'):
        load_pretrained_backbone(EfficientViT(arch='m0'), str(path))


@pytest.mark.parametrize('content, match', [
    (None, 'not found'),
    (b'this is not a checkpoint', 'not a PyTorch checkpoint|corrupt'),
    ('truncated', 'corrupt, truncated'),
])
def test_bad_files_get_one_line_errors(tmp_path, content, match):
    path = tmp_path / 'weights.pth'
    if content == 'truncated':
        torch.save(official_imagenet_checkpoint('m0'), path)
        path.write_bytes(path.read_bytes()[:5000])
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match) as info:
        load_pretrained_backbone(EfficientViT(arch='m0'), str(path))
    assert str(path) in str(info.value)
    assert '\n' not in str(info.value)


def test_unreadable_safetensors_file_gets_one_line_error(tmp_path):
    path = tmp_path / 'efficientvit_m0.safetensors'
    path.write_bytes(b'\x08\x00\x00\x00\x00\x00\x00\x00not json')
    with pytest.raises(CheckpointError) as info:
        load_pretrained_backbone(EfficientViT(arch='m0'), str(path))
    message = str(info.value)
    assert message.startswith(f'{path} is not a readable safetensors file (')
    assert 'Error' in message and '\n' not in message


def test_convert_is_idempotent_on_mmevit_weights():
    weights = randomize_weights(EfficientViT(arch='m1'))
    again = convert_efficientvit_state_dict(weights)
    assert again.keys() == weights.keys()
    for key in weights:
        assert torch.equal(again[key], weights[key])


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A folder served over HTTP on localhost, and torch's hub cache (where
    downloads go) in a fresh folder."""
    folder = tmp_path / 'served'
    folder.mkdir()
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f'http://127.0.0.1:{server.server_port}'
    server.shutdown()
    server.server_close()


def test_a_url_checkpoint_is_downloaded_once_and_read_safely(served,
                                                               tmp_path):
    folder, url = served
    torch.save(official_imagenet_checkpoint('m0'), folder / 'efficientvit_m0.pth')
    marker = tmp_path / 'ran'
    torch.save({'model': Payload(os.system, f'touch {marker}')}, folder / 'evil.pth')
    model = EfficientViT(arch='m0')
    load_pretrained_backbone(model, f'{url}/efficientvit_m0.pth')
    cached = tmp_path / 'torch_home' / 'hub' / 'checkpoints' / 'efficientvit_m0.pth'
    assert cached.read_bytes() == (folder / 'efficientvit_m0.pth').read_bytes()
    (folder / 'efficientvit_m0.pth').unlink()  # read from the cache now
    load_pretrained_backbone(EfficientViT(arch='m0'), f'{url}/efficientvit_m0.pth')
    with pytest.raises(CheckpointError, match='refused to load .*evil.pth: its '
                       'pickle asks for .*system'):
        load_pretrained_backbone(EfficientViT(arch='m0'), f'{url}/evil.pth')
    assert not marker.exists()


def test_an_unreachable_url_is_one_line_with_the_local_option(served):
    _, url = served
    with pytest.raises(CheckpointError) as info:
        load_pretrained_backbone(EfficientViT(arch='m0'),
                                 f'{url}/weights/efficientvit_m4.pth')
    message = str(info.value)
    assert message.startswith(f'cannot download the pretrained weights '
                              f'{url}/weights/efficientvit_m4.pth (HTTP Error 404')
    assert message.endswith(
        '). Download the file on a machine with network access and point the '
        'config at it, e.g. --cfg-options '
        'model.backbone.init_cfg.checkpoint=/path/to/efficientvit_m4.pth')
    assert not os.listdir(os.path.join(os.environ['TORCH_HOME'], 'hub', 'checkpoints'))
