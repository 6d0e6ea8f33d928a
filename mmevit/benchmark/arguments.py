"""Argument types shared by the measuring tools."""
import argparse
import re


def image_shape(text):
    """argparse type: ``'800x1344'`` -> (800, 1344); ``'224'`` -> (224, 224)."""
    match = re.fullmatch(r'(\d+)(?:x(\d+))?', text)
    if not match:
        raise argparse.ArgumentTypeError(
            f'bad shape {text!r}; write HxW (800x1344) or S (224)')
    height = int(match.group(1))
    width = int(match.group(2) or height)
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f'shape {text!r} must be positive')
    return height, width


def positive_int(text):
    """argparse type: an int of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r} is not an int') from None
    if value < 1:
        raise argparse.ArgumentTypeError(f'{value} must be at least 1')
    return value
