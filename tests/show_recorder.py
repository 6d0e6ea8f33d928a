"""A matplotlib backend that records what is shown instead of opening a
window: each shown figure is saved to ``$MMEVIT_SHOWN_DIR/shown_<n>.png``
and each wait for a key (``start_event_loop``) appends its timeout to
``$MMEVIT_SHOWN_DIR/waits.txt``. Select it with
``matplotlib.pyplot.switch_backend('module://tests.show_recorder')``.
"""
import os

from matplotlib.backend_bases import FigureManagerBase
from matplotlib.backends.backend_agg import FigureCanvasAgg


def _out(name):
    return os.path.join(os.environ['MMEVIT_SHOWN_DIR'], name)


class RecordingManager(FigureManagerBase):

    def show(self):
        count = len([n for n in os.listdir(_out('')) if n.startswith('shown_')])
        self.canvas.figure.savefig(_out(f'shown_{count}.png'))


class RecordingCanvas(FigureCanvasAgg):
    manager_class = RecordingManager

    def start_event_loop(self, timeout=0):
        with open(_out('waits.txt'), 'a') as f:
            f.write(f'{timeout}\n')


FigureCanvas = RecordingCanvas
FigureManager = RecordingManager
