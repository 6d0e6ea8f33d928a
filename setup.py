"""Install mmevit. Configs and tools are shipped under ``mmevit/.mim`` so
that ``mmevit::`` config references resolve, as in mmdet and mmpretrain."""
import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

ROOT = osp.dirname(osp.abspath(__file__))


def read_version():
    namespace = {}
    with open(osp.join(ROOT, 'mmevit', 'version.py')) as f:
        exec(f.read(), namespace)
    return namespace['__version__']


def read_requirements(name):
    with open(osp.join(ROOT, 'requirements', name)) as f:
        return [line.strip() for line in f
                if line.strip() and not line.startswith('#')]


def add_mim_extension():
    """Link (editable) or copy (wheel, sdist) configs/, tools/ and the model
    index into mmevit/.mim, where mim and ``mmevit::`` paths look."""
    copy = any(cmd in sys.argv for cmd in ('bdist_wheel', 'sdist'))
    mim = osp.join(ROOT, 'mmevit', '.mim')
    os.makedirs(mim, exist_ok=True)
    for name in ('configs', 'tools', 'model-index.yml'):
        source, target = osp.join(ROOT, name), osp.join(mim, name)
        if osp.islink(target) or osp.isfile(target):
            os.remove(target)
        elif osp.isdir(target):
            shutil.rmtree(target)
        if not copy:
            os.symlink(osp.join('..', '..', name), target)
        elif osp.isdir(source):
            shutil.copytree(source, target)
        else:
            shutil.copyfile(source, target)


add_mim_extension()
setup(
    name='mmevit',
    version=read_version(),
    description='EfficientViT (CVPR 2023) backbones and necks for mmdet and '
    'mmsegmentation',
    long_description=open(osp.join(ROOT, 'README.md')).read(),
    long_description_content_type='text/markdown',
    python_requires='>=3.8',
    packages=find_packages(include=('mmevit', 'mmevit.*')),
    include_package_data=True,
    # The train/test/demo/convert tools, not tools/analysis_tools or
    # tools/data (measuring and synthetic data stay in the repository).
    package_data={'mmevit': ['.mim/configs/**/*.py', '.mim/configs/*.yml',
                             '.mim/tools/*.py', '.mim/tools/*.sh',
                             '.mim/model-index.yml']},
    # What `import mmevit` needs, from the oldest versions it supports
    # (mmevit/stack.py; the README's support table says which are tested).
    # No upper bounds: mmdet and mmseg state theirs, and pip must never
    # replace the torch, mmcv or numpy a user's compiled ops were built for.
    install_requires=['torch>=2.1', 'mmcv>=2.0.0', 'mmengine>=0.10.3',
                      'numpy>=1.22'],
    extras_require={
        'mmdet': ['mmdet>=3.3.0,<4.0.0'],
        'mmseg': ['mmsegmentation>=1.2.2,<2.0.0', 'ftfy', 'regex'],
        'safetensors': ['safetensors'],  # timm's .safetensors weights
        'analysis': read_requirements('analysis.txt'),
        'deploy': read_requirements('deploy.txt'),
        'tests': read_requirements('tests.txt'),
    },
    license='Apache-2.0',
    zip_safe=False,
)
