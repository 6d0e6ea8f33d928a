"""Which errors the tools turn into one `error:` line (exit status 2)."""
import pytest

from mmevit.errors import CheckpointError, ConfigError, DataError
from mmevit.tools.cli import exit_on_user_error


@pytest.mark.parametrize('error', [
    ConfigError("unknown arch 'm9'"), DataError('val.json is not JSON'),
    CheckpointError('epoch_1.pth is truncated'),
    FileNotFoundError('config not found: a.py'),
    FileExistsError('out.pth exists'),
])
def test_input_errors_are_one_line(error, capsys):
    with pytest.raises(SystemExit) as exit_info, exit_on_user_error():
        raise error
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f'error: {error}\n'


@pytest.mark.parametrize('error', [ValueError('a bug'), KeyError('k'),
                                   RuntimeError('shape mismatch')])
def test_other_errors_keep_their_traceback(error):
    with pytest.raises(type(error)), exit_on_user_error():
        raise error


def test_traceback_on_request(monkeypatch):
    monkeypatch.setenv('MMEVIT_TRACEBACK', '1')
    with pytest.raises(ConfigError), exit_on_user_error():
        raise ConfigError('bad value')
