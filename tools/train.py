"""Train an mmdet or mmseg model from a config (the codebase is chosen from
the config's ``default_scope``)."""
import argparse
import sys

from mmengine.logging import print_log

from mmevit.engine import TrainingPreempted, build_runner
from mmevit.tools import (
    check_model_channels,
    end_distributed,
    exclusive_work_dir,
    explain_data_errors,
    prepare_cpu_distributed,
    replace_sync_bn,
    use_safe_checkpoint_hook,
)
from mmevit.tools.cli import (
    add_runner_arguments,
    exit_on_user_error,
    exit_preempted,
    parse_runner_args,
)
from mmevit.tools.config_options import runner_config, use_preemption_hook


def parse_args():
    parser = argparse.ArgumentParser(description='Train a detector or segmentor')
    parser.add_argument('config', help='train config file path')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or without a path from the '
        'latest checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by the actual batch size')
    parser.add_argument(
        '--preempt-signal', action='append', default=[], metavar='SIGNAL',
        help='a signal that, like SIGTERM, makes the run save a checkpoint '
        'after the current iteration and exit with status 75 (e.g. USR1 '
        'for Slurm\'s --signal=USR1@90); repeatable')
    add_runner_arguments(parser)
    return parse_runner_args(parser)


def build_cfg(args):
    cfg, _ = runner_config(args)
    if args.amp:
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.auto_scale_lr:
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    use_safe_checkpoint_hook(cfg)
    use_preemption_hook(cfg, ['SIGTERM', *args.preempt_signal])
    if args.launcher == 'none' and replace_sync_bn(cfg.model):
        print_log('single process: SyncBN replaced by BN', logger='current')
    elif args.launcher != 'none':
        prepare_cpu_distributed(cfg)
    return cfg


def train(cfg):
    """Train; return the message of a preempted run, else None."""
    runner = build_runner(cfg)
    check_model_channels(runner.model)
    with explain_data_errors(cfg, 'train'):
        try:
            runner.train()
        except TrainingPreempted as err:
            return str(err)
    return None


def main():
    args = parse_args()
    with exit_on_user_error():
        cfg = build_cfg(args)
        with exclusive_work_dir(cfg.work_dir):
            preempted = train(cfg)
    end_distributed()  # the runner is out of scope
    if preempted:
        exit_preempted(preempted)


if __name__ == '__main__':
    sys.exit(main())
