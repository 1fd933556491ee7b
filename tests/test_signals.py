"""SIGTERM unwinds like Ctrl-C inside the block, and the previous handler comes back after it."""

import os
import signal

import pytest

from caesar_mrcnn.signals import sigterm_as_interrupt


def test_sigterm_raises_keyboard_interrupt_and_the_old_handler_returns():
    before = signal.getsignal(signal.SIGTERM)
    cleaned = []
    with pytest.raises(KeyboardInterrupt):
        with sigterm_as_interrupt():
            try:
                os.kill(os.getpid(), signal.SIGTERM)  # Python runs the handler right after
            finally:
                cleaned.append(True)
    assert cleaned == [True]
    assert signal.getsignal(signal.SIGTERM) is before
