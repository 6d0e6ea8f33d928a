"""The speed, FLOPs and ONNX tools (tiny sizes; no timing is asserted).
mmevit against the official code: tests/test_official_equivalence.py."""
import json
import os.path as osp

import pytest
import torch

from mmevit.models import EfficientViT
from mmevit.tools.backbone_onnx import check_onnx, export_backbone_onnx
from mmevit.tools.benchmark.flops import PAPER_COMPLEXITY, classifier_complexity
from tests.helpers import load_tool, needs_exporter, run_tool

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RETINA_M0 = osp.join(ROOT, 'configs', 'retinanet_efficientvit_m0_coco.py')
BENCHMARK = ('tools/analysis_tools/benchmark.py', )
benchmark = load_tool('analysis_tools/benchmark')
get_flops = load_tool('analysis_tools/get_flops')
compare_latency = load_tool('analysis_tools/export_onnx').compare_latency


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
    threads = torch.get_num_threads()
    rows = compare_latency(model, path, (96, 128), repeats=1)
    assert [row['name'] for row in rows] == [
        'PyTorch eager', 'PyTorch eager, BN folded', 'onnxruntime']
    assert all(row['median_ms'] > 0 for row in rows)
    assert torch.get_num_threads() == threads  # one thread only while timing


@pytest.mark.parametrize('arch', sorted(PAPER_COMPLEXITY))
def test_classifier_complexity_matches_paper(arch):
    counts = classifier_complexity(arch, 224)
    params, mmacs = PAPER_COMPLEXITY[arch]
    assert abs(counts['params'] / 1e6 - params) < 0.1
    assert abs(counts['macs'] / 1e6 - mmacs) < 1


def test_benchmark_tool_table_json_and_plot(tmp_path):
    out, plot = tmp_path / 'speed.json', tmp_path / 'speed.png'
    # A process of its own: --threads changes torch's global thread count.
    result = run_tool(*BENCHMARK, RETINA_M0, '--arch', 'm0', '--parts',
                      'backbone', 'backbone+neck', 'model', '--shape', '128',
                      '160x192', '--threads', '1', '--warmup', '1',
                      '--repeats', '2', '--json', out, '--plot', plot)
    assert '| name' in result.stdout and 'gflops_per_s' in result.stdout
    data = json.loads(out.read_text())
    assert data['meta']['threads'] == 1
    names = [row['name'] for row in data['rows']]
    assert names == 2 * ['EfficientViT-M0: backbone',
                         'retinanet_efficientvit_m0_coco: backbone',
                         'retinanet_efficientvit_m0_coco: backbone+neck',
                         'retinanet_efficientvit_m0_coco: model']
    for row in data['rows']:
        assert row['latency_ms'] > 0 and row['throughput'] > 0
        assert row['gflop'] > 0 and row['matmul_gflops_per_s'] > 0
    assert plot.read_bytes()[:4] == b'\x89PNG'


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
])
def test_benchmark_bad_input_gives_one_line_error(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        benchmark.main([*args, '--repeats', '1'])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and message in err
    assert len(err.splitlines()) == 1
