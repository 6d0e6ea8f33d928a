"""The speed, FLOPs and ONNX tools (tiny sizes; no timing is asserted).
mmevit against the official code: tests/test_official_equivalence.py."""
import json
import os.path as osp

import pytest
import torch

from mmevit.models import EfficientViT
from mmevit.tools.backbone_onnx import check_onnx, export_backbone_onnx
from mmevit.tools.benchmark.flops import PAPER_COMPLEXITY, classifier_complexity
from tests.helpers import RETINA_TOY, load_tool, needs_exporter, run_tool

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RETINA_M0 = osp.join(ROOT, 'configs', 'retinanet_efficientvit_m0_coco.py')
BENCHMARK = 'tools/analysis_tools/benchmark.py'
benchmark = load_tool('analysis_tools/benchmark')
get_flops = load_tool('analysis_tools/get_flops')


@needs_exporter
def test_onnx_round_trip_two_sizes(tmp_path):
    arch = dict(embed_dims=[32, 48, 64], depths=[1, 1, 1],
                num_heads=[2, 3, 2], q_kernels=[5, 3, 3])
    model = EfficientViT(arch=arch).eval()
    path = str(tmp_path / 'tiny.onnx')
    assert export_backbone_onnx(model, path, 96, 128) == ['out0', 'out1', 'out2']
    rows = check_onnx(model, path, [(1, 96, 128), (2, 150, 71)])
    assert [row['shape'] for row in rows] == [[1, 3, 96, 128], [2, 3, 150, 71]]
    assert all(row['max_rel_diff'] <= 1e-4 for row in rows)


@pytest.mark.parametrize('arch', sorted(PAPER_COMPLEXITY))
def test_classifier_complexity_matches_paper(arch):
    counts = classifier_complexity(arch, 224)
    params, mmacs = PAPER_COMPLEXITY[arch]
    assert abs(counts['params'] / 1e6 - params) < 0.1
    assert abs(counts['macs'] / 1e6 - mmacs) < 1


def test_benchmark_tool_table_json_and_plot(tmp_path):
    out, plot = tmp_path / 'speed.json', tmp_path / 'speed.png'
    # As a user runs it: a file, in a process of its own (--threads).
    result = run_tool(BENCHMARK, RETINA_M0, '--arch', 'm0', '--parts',
                      'backbone', 'backbone+neck', 'network', 'model',
                      '--shape', '128', '160x192', '--threads', '1',
                      '--warmup', '1', '--repeats', '2', '--json', out,
                      '--plot', plot)
    assert '| model' in result.stdout and 'gflops_per_s' in result.stdout
    data = json.loads(out.read_text())
    assert data['meta']['cpu'] and data['meta']['date']
    config = 'retinanet_efficientvit_m0_coco'
    assert [(row['model'], row['part']) for row in data['rows']] == 2 * [
        ('EfficientViT-M0', 'backbone'), (config, 'backbone'),
        (config, 'backbone+neck'), (config, 'network'), (config, 'model')]
    assert [row['shape'][2:] for row in data['rows']] == \
        5 * [[128, 128]] + 5 * [[160, 192]]
    for row in data['rows']:
        assert row['threads'] == 1 and row['path'] == 'eager-fp32'
        assert row['latency_ms'] > 0 and row['throughput'] > 0
        assert row['gflop'] > 0 and row['matmul_gflops_per_s'] > 0
        assert row['x_eager_fp32'] == 1
    # FLOPs and parameters grow from the backbone to the whole model
    rows = {row['part']: row for row in data['rows'][1:5]}
    assert rows['backbone']['gflop'] < rows['backbone+neck']['gflop'] \
        < rows['network']['gflop']
    assert rows['backbone']['params_m'] < rows['backbone+neck']['params_m'] \
        < rows['model']['params_m'] == rows['network']['params_m']
    assert plot.read_bytes()[:4] == b'\x89PNG'


def test_benchmark_plots_several_models_of_one_size_against_their_gflop(tmp_path):
    plot = tmp_path / 'speed_vs_gflop.png'
    benchmark.main(['--arch', 'm0', 'm1', '--parts', 'backbone', '--shape', '96',
                    '--warmup', '0', '--repeats', '1', '--plot', str(plot)])
    assert plot.read_bytes()[:4] == b'\x89PNG'


@needs_exporter
def test_benchmark_tool_times_every_precision_at_each_thread_count(tmp_path):
    """The whole model on every path (the ONNX ones exported and quantized
    as tools/deploy.py does) at each thread count, ratios to eager fp32 of
    the same round (x_reference: tests/test_rtmdet.py)."""
    out = tmp_path / 'precision.json'
    paths = ['eager-fp32', 'eager-bf16', 'ort-fp32', 'ort-int8']
    run_tool(BENCHMARK, RETINA_TOY, '--paths', *paths, '--threads', '1', '2',
             '--shape', '128x160', '--warmup', '0', '--repeats', '1', '--json', out)
    rows = json.loads(out.read_text())['rows']
    assert [(r['threads'], r['model'], r['part'], r['path']) for r in rows] == [
        (threads, 'retinanet_efficientvit_m0_toy', 'model', path)
        for threads in (1, 2) for path in paths]
    for threads in (1, 2):
        fp32, *others = [r for r in rows if r['threads'] == threads]
        for row in others:
            assert row['x_eager_fp32'] == pytest.approx(
                fp32['latency_ms'] / row['latency_ms'])


def test_benchmark_tool_compare_official(tmp_path):
    out = tmp_path / 'compare.json'
    benchmark.main(['--arch', 'm1', '--compare-official', '--shape', '64x512',
                    '--warmup', '1', '--repeats', '2',
                    '--json', str(out)])
    rows = json.loads(out.read_text())['rows']
    assert [r['variant'] for r in rows] == [
        'official', 'official, BN folded', 'mmevit', 'mmevit deploy']
    # Speed-ups are against the official row of the same run.
    for row in rows:
        assert row['speedup_vs_official'] == pytest.approx(
            rows[0]['latency_ms'] / row['latency_ms'])
    assert rows[0]['max_rel_diff_vs_official'] == 0
    # Folding BN changes the rounding: the folded variants are other networks.
    assert 0 < rows[1]['max_rel_diff_vs_official'] <= 1e-3
    assert rows[2]['max_rel_diff_vs_official'] <= 1e-4
    assert 0 < rows[3]['max_rel_diff_vs_official'] <= 1e-3


def test_get_flops_tool(tmp_path, capsys):
    out = tmp_path / 'flops.json'
    get_flops.main(['--arch', 'm4', '--shape', '224', '--json', str(out)])
    assert 'EfficientViT-M4 backbone' in capsys.readouterr().out
    row = json.loads(out.read_text())['rows'][0]
    assert round(row['classifier_params_m'], 1) == row['paper_params_m']
    assert round(row['classifier_mmacs']) == row['paper_mmacs']
    assert 8.3 < row['params_m'] < 8.5  # backbone without the ImageNet head


@pytest.mark.parametrize('args, message', [
    (['--arch', 'm0', '--device', 'tpu0'], "unknown device 'tpu0'"),
    (['--arch', 'm0', '--device', 'cuda:7'], "device 'cuda:7'"),
    (['--arch', 'm0', '--shape', '48x200'],
     'input size 48x200 is below the minimum 64x64'),
    (['--arch', 'm0', '--batch-size', '20000', '--shape', '800x1344'],
     'does not fit'),
    (['--arch', 'm9'], "unknown arch 'm9'"),
    (['--arch', 'm0', '--compare-official', '--shape', '224'],
     'the official code cannot run at 224x224: its stage-3 map is 4x4'),
    pytest.param(['--arch', 'm0', '--gpu-throughput'],
                 '--gpu-throughput needs a CUDA GPU',
                 marks=pytest.mark.skipif(torch.cuda.is_available(),
                                          reason='a CUDA GPU is here')),
])
def test_benchmark_bad_input_gives_one_line_error(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        benchmark.main([*args, '--repeats', '1'])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and message in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize('args, message', [
    ([], 'give a config or --arch'),
    (['--arch', 'm0', '--reference', '1'], '--reference 1: choose 0..0'),
    (['--arch', 'm0', '--compare-official', '--paths', 'ort-fp32'],
     '--compare-official times --arch backbones only'),
])
def test_benchmark_bad_options_are_named(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        benchmark.parse_args(args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_gflop_plot_joins_the_variants_of_one_family_and_names_points_short():
    from mmevit.tools.benchmark.table import model_family, short_name
    assert model_family('rtmdet_efficientvit_m3_coco') == \
        model_family('rtmdet_efficientvit_m0_coco') == 'rtmdet_efficientvit_m*_coco'
    assert model_family('EfficientViT-M1') == 'EfficientViT-M*'
    assert model_family('rtmdet_tiny_8xb32-300e_coco') == 'rtmdet_tiny_8xb32-300e_coco'
    assert [short_name(m) for m in ('rtmdet_efficientvit_m3_coco', 'EfficientViT-M1',
                                    'rtmdet_tiny_8xb32-300e_coco')] == ['M3', 'M1', 'rtmdet_tiny']
