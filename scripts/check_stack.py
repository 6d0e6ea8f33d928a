"""Prove the installed stack: mmcv's compiled ops run and mmevit imports."""
import sys

import torch


def check_focal_loss(sigmoid_focal_loss):
    """mmcv compiles sigmoid_focal_loss for CUDA/MLU/NPU only; on CPU mmdet's
    FocalLoss uses its PyTorch path. Check the op is built, run it where a GPU
    exists, and run mmdet's FocalLoss here."""
    from mmcv.utils import ext_loader
    from mmdet.models.losses import FocalLoss
    ext = ext_loader.load_ext('_ext', ['sigmoid_focal_loss_forward'])
    assert hasattr(ext, 'sigmoid_focal_loss_forward')
    labels = torch.tensor([0, 1, 2, 1])
    logits = torch.zeros(4, 3, requires_grad=True)
    loss = FocalLoss()(logits, labels)
    loss.backward()
    assert torch.isfinite(loss) and logits.grad is not None
    if not torch.cuda.is_available():
        return ('sigmoid_focal_loss compiled, CUDA-only; mmdet FocalLoss '
                'ran on CPU')
    logits = torch.zeros(4, 3, device='cuda')
    sigmoid_focal_loss(logits, labels.cuda(), 2.0, 0.25, None, 'mean')
    return 'sigmoid_focal_loss ran on CUDA'


def check_ops(nms, RoIAlign, device):
    """nms and RoIAlign give their known results on ``device``."""
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.],
                          [50., 50., 60., 60.]], device=device)
    scores = torch.tensor([0.9, 0.8, 0.7], device=device)
    _, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2], f'nms on {device} kept {keep.tolist()}'

    feats = torch.arange(64., device=device).view(1, 1, 8, 8)
    rois = torch.tensor([[0., 0., 0., 4., 4.]], device=device)
    pooled = RoIAlign((2, 2), spatial_scale=1., sampling_ratio=2)(feats, rois)
    assert pooled.shape == (1, 1, 2, 2), pooled.shape


def main():
    import mmcv
    import mmdet
    import mmengine
    import mmseg
    from mmcv.ops import RoIAlign, nms, sigmoid_focal_loss

    devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() else [])
    for device in devices:
        check_ops(nms, RoIAlign, device)
    focal = check_focal_loss(sigmoid_focal_loss)

    import mmevit
    print(f'stack OK: torch {torch.__version__}, mmcv {mmcv.__version__} '
          f'(nms, RoIAlign ran on {" and ".join(devices)}; {focal}), mmengine '
          f'{mmengine.__version__}, mmdet {mmdet.__version__}, mmseg '
          f'{mmseg.__version__}, mmevit {mmevit.__version__}')


if __name__ == '__main__':
    sys.exit(main())
