"""How `make install` decides to build mmcv's ops (scripts/mmcv_build.py),
with the CUDA probes faked: CPU ops without a usable GPU, CUDA ops with a
GPU and nvcc, one line saying what to install with a GPU and no nvcc."""
import importlib.util
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT

SCRIPT = os.path.join(ROOT, 'scripts', 'mmcv_build.py')
spec = importlib.util.spec_from_file_location('mmcv_build', SCRIPT)
mmcv_build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mmcv_build)
Probe = mmcv_build.Probe


def fake_toolkit(root):
    nvcc = root / 'bin' / 'nvcc'
    nvcc.parent.mkdir(parents=True)
    nvcc.write_text('#!/bin/sh\n')
    nvcc.chmod(0o755)
    return str(root)


@pytest.mark.parametrize('torch_cuda', [None, '12.1'])
def test_without_a_usable_gpu_mmcv_builds_cpu_ops(torch_cuda, tmp_path):
    # PyPI's torch 2.1.2 is a CUDA build: on a machine without a GPU it
    # must still build CPU ops, and nvcc being there changes nothing
    plan = mmcv_build.build_plan(
        Probe('2.1.2', torch_cuda, False, fake_toolkit(tmp_path)))
    assert plan == dict(MMCV_OPS='cpu', FORCE_CUDA='0', CUDA_HOME='',
                        CACHE_SUFFIX='')


def test_a_gpu_with_nvcc_builds_cuda_ops_into_their_own_cache(tmp_path):
    home = fake_toolkit(tmp_path)
    plan = mmcv_build.build_plan(Probe('2.1.2', '12.1', True, home))
    assert plan == dict(MMCV_OPS='cuda', FORCE_CUDA='1', CUDA_HOME=home,
                        CACHE_SUFFIX='-cuda12.1')


def test_a_gpu_without_nvcc_stops_with_one_line_on_what_to_install():
    with pytest.raises(SystemExit) as exc:
        mmcv_build.build_plan(Probe('2.1.2', '12.1', True, None))
    message = str(exc.value)
    assert '\n' not in message and message.startswith('error: ')
    assert 'nvcc' in message and 'CUDA 12.1 toolkit' in message
    assert 'CUDA_HOME' in message
    # torch 2.1 has OpenMMLab's prebuilt CUDA wheels: the line names them
    assert 'download.openmmlab.com/mmcv/dist/cu121/torch2.1/index.html' in message


def test_newer_torch_is_not_sent_to_prebuilt_wheels_that_do_not_exist():
    with pytest.raises(SystemExit) as exc:
        mmcv_build.build_plan(Probe('2.13.0+cu128', '12.8', True, None))
    assert 'CUDA 12.8 toolkit' in str(exc.value)
    assert 'openmmlab.com' not in str(exc.value)


def test_cuda_home_is_found_as_torch_finds_it(tmp_path):
    env_home = fake_toolkit(tmp_path / 'env')
    path_home = fake_toolkit(tmp_path / 'path')
    nvcc_on_path = os.path.join(path_home, 'bin', 'nvcc')
    empty = str(tmp_path / 'empty')

    def which(name):
        return nvcc_on_path

    assert mmcv_build.find_cuda_home({'CUDA_HOME': env_home}, which) == env_home
    # a CUDA_HOME without nvcc falls through to the nvcc on PATH
    assert mmcv_build.find_cuda_home({'CUDA_HOME': empty}, which) == path_home
    if not os.path.isfile('/usr/local/cuda/bin/nvcc'):
        assert mmcv_build.find_cuda_home({}, lambda name: None) is None


def test_install_reads_the_plan_for_this_machine():
    out = subprocess.run([sys.executable, SCRIPT], capture_output=True,
                         text=True, check=True).stdout
    keys = [line.split('=', 1)[0] for line in out.splitlines()]
    assert keys == ['MMCV_OPS', 'FORCE_CUDA', 'CUDA_HOME', 'CACHE_SUFFIX']
    import torch
    expected = 'cuda' if torch.cuda.is_available() else 'cpu'
    assert f'MMCV_OPS={expected}' in out.splitlines()
