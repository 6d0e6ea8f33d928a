"""Write a small synthetic data set of shapes in the COCO or ADE20K layout.

``coco``: detection and instance segmentation (circle, square, triangle).
``ade20k``: semantic segmentation (ground, circle, square, triangle).
The same seed always writes the same files.
"""
import argparse

from mmevit.tools.cli import exit_on_user_error
from mmevit.tools.toy_shapes import make_ade20k_toy, make_coco_toy

MAKERS = {'coco': make_coco_toy, 'ade20k': make_ade20k_toy}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument('format', choices=sorted(MAKERS),
                        help='data set layout')
    parser.add_argument('out_dir', help='output folder, e.g. data/toy_coco')
    # Options left out keep the defaults of toy_shapes.make_*_toy.
    for option, meaning in (('--num-train', 'number of training images'),
                            ('--num-val', 'number of validation images'),
                            ('--seed', 'random seed')):
        parser.add_argument(option, type=int, default=argparse.SUPPRESS,
                            help=meaning)
    return parser.parse_args(argv)


def main(argv=None):
    kwargs = vars(parse_args(argv))
    fmt, out_dir = kwargs.pop('format'), kwargs.pop('out_dir')
    with exit_on_user_error():
        info = MAKERS[fmt](out_dir, **kwargs)
    print(f'{fmt} toy data in {info["data_root"]}: '
          f'{info["num_train"]} train / {info["num_val"]} val images, '
          f'classes {", ".join(info["classes"])}')
    for key, path in info.items():
        if key.endswith(('_file', '_dir')):
            print(f'  {key}: {path}')


if __name__ == '__main__':
    main()
