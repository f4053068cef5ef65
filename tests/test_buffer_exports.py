"""DecryptedBuffer and the views taken from it: closing never turns a live view into zeros.

close() (or leaving a ``with`` block) while a memoryview, numpy array or torch tensor still points
into the plaintext raises BufferError, as ``mmap.close()`` does, and leaves the buffer open and its
bytes intact; once the views are released, close() wipes. While an exception propagates (a ``with``
block that raised, close() in ``except``/``finally``) closing does not raise over it: the buffer is
closed for new access and wiped when the last view goes.
"""

import ctypes
import gc
import subprocess
import sys

import numpy as np
import pytest

import modelcrypt

KEY = bytes(range(32))
VALUES = np.arange(4096, dtype=np.float32)
DATA = VALUES.tobytes()


@pytest.fixture()
def encrypted(tmp_path):
    path = tmp_path / "w.bin.mcx"
    path.write_bytes(modelcrypt.encrypt_bytes(DATA, KEY, chunk_size=4096))
    return path


def _zeroed_at(address, size):
    return ctypes.string_at(address, size) == bytes(size)


def test_numpy_array_across_with_block_raises_and_keeps_data(encrypted):
    with pytest.raises(BufferError, match=r"cannot close: 1 exported view still exists.*del arr.*copy=True"):
        with modelcrypt.load(encrypted, KEY) as buf:
            w = np.frombuffer(buf, np.float32)
    np.testing.assert_array_equal(w, VALUES)  # never silent zeros
    assert not buf.closed and buf.exports == 1
    assert bytes(buf) == DATA  # still usable
    address = w.ctypes.data
    del w
    gc.collect()
    assert buf.exports == 0
    buf.close()  # now it wipes
    assert buf.closed
    assert _zeroed_at(address, len(DATA))  # the mapping lives with `buf`; its bytes are zeros
    with pytest.raises(ValueError, match="closed"):
        memoryview(buf)


def test_memoryview_across_close_raises_and_release_allows_close(encrypted):
    buf = modelcrypt.load(encrypted, KEY)
    mv = memoryview(buf)
    part = mv[100:200]  # slices share the one export
    assert buf.exports == 1
    with pytest.raises(BufferError, match="1 exported view"):
        buf.close()
    assert bytes(mv) == DATA and bytes(part) == DATA[100:200]
    part.release()
    mv.release()
    assert buf.exports == 0
    buf.close()
    assert buf.closed


def test_counts_several_views_and_copies_need_no_release(encrypted):
    buf = modelcrypt.load(encrypted, KEY)
    a = np.frombuffer(buf, np.float32)
    mv = memoryview(buf)
    assert buf.exports == 2
    with pytest.raises(BufferError, match="2 exported views still exist"):
        buf.close()
    copied = np.array(np.frombuffer(buf, np.float32), copy=True)  # the safe pattern: a copy of its own
    raw = bytes(buf)
    del a
    mv.release()
    gc.collect()
    buf.close()
    np.testing.assert_array_equal(copied, VALUES)
    assert raw == DATA


def test_torch_frombuffer_is_counted(encrypted):
    """torch.frombuffer releases its Py_buffer at once and keeps a reference to Py_buffer.obj:
    that reference alone must block the wipe."""
    torch = pytest.importorskip("torch")
    buf = modelcrypt.load(encrypted, KEY)
    t = torch.frombuffer(buf, dtype=torch.float32)
    assert buf.exports == 1
    with pytest.raises(BufferError):
        buf.close()
    with pytest.raises(BufferError):
        buf.__exit__(None, None, None)
    assert torch.equal(t, torch.from_numpy(VALUES))
    t2 = t[10:20]  # a view of the tensor: the same storage, no new export
    del t
    gc.collect()
    assert buf.exports == 1  # t2 still reads the plaintext
    assert torch.equal(t2, torch.from_numpy(VALUES[10:20]))
    del t2
    gc.collect()
    assert buf.exports == 0
    buf.close()
    assert buf.closed


def test_exception_in_with_block_is_not_replaced_and_wipe_waits_for_the_views(encrypted):
    with pytest.raises(RuntimeError, match="boom"):
        with modelcrypt.load(encrypted, KEY) as buf:
            w = np.frombuffer(buf, np.float32)
            raise RuntimeError("boom")
    assert buf.closed  # closed for new access ...
    with pytest.raises(ValueError):
        bytes(buf)
    np.testing.assert_array_equal(w, VALUES)  # ... but the live view still reads the plaintext
    address = w.ctypes.data
    del w
    gc.collect()
    assert buf.exports == 0
    assert _zeroed_at(address, len(DATA))  # wiped when the last view went (buf itself still alive)


def test_close_in_finally_during_an_exception_does_not_mask_it(encrypted):
    buf = modelcrypt.load(encrypted, KEY)
    w = np.frombuffer(buf, np.float32)
    with pytest.raises(KeyError):
        try:
            raise KeyError("original")
        finally:
            buf.close()
    assert buf.closed
    np.testing.assert_array_equal(w, VALUES)
    address = w.ctypes.data
    del w
    gc.collect()
    assert _zeroed_at(address, len(DATA))


def test_close_without_views_wipes_as_before(encrypted):
    with modelcrypt.load(encrypted, KEY) as buf:
        assert bytes(buf) == DATA
        address = np.frombuffer(buf, np.uint8).ctypes.data  # the array is gone after this line
    assert buf.closed and buf.exports == 0
    assert _zeroed_at(address, len(DATA))


def test_views_keep_the_plaintext_alive_and_the_last_one_out_wipes_it():
    """After `del buf` a view still reads the plaintext (the view keeps it alive); when the view goes
    too, the buffer is freed (and wiped by SecureBuffer) without a crash. In a child process, so a
    use-after-free shows up as a failure of this test."""
    code = (
        "import gc, numpy as np, modelcrypt\n"
        "k = bytes(32)\n"
        "data = np.arange(1000, dtype=np.float32)\n"
        "buf = modelcrypt.decrypt_bytes(modelcrypt.encrypt_bytes(data.tobytes(), k), k)\n"
        "a = np.frombuffer(buf, np.float32)\n"
        "owner = memoryview(buf).obj\n"
        "assert isinstance(owner, modelcrypt.DecryptedBuffer) and owner is not buf\n"
        "del buf, owner\n"
        "gc.collect()\n"
        "assert (a == data).all()\n"
        "del a\n"
        "gc.collect()\n"
        "print('OK')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "OK"


def test_load_range_and_decrypt_bytes_buffers_follow_the_same_rule(encrypted):
    blob = encrypted.read_bytes()
    for buf in (modelcrypt.load_range(encrypted, KEY, offset=4000, length=5000), modelcrypt.decrypt_bytes(blob, KEY)):
        view = np.frombuffer(buf, np.uint8)
        with pytest.raises(BufferError):
            buf.close()
        expected = DATA[4000:9000] if len(buf) == 5000 else DATA
        assert view.tobytes() == expected
        del view
        gc.collect()
        buf.close()
        assert buf.closed


def test_export_handle_is_a_buffer_of_the_same_bytes_that_cannot_be_closed_while_alive(encrypted):
    buf = modelcrypt.load(encrypted, KEY)
    a = np.frombuffer(buf, np.uint8)
    owner = a.base.obj
    assert isinstance(owner, modelcrypt.DecryptedBuffer)
    assert bytes(owner) == DATA and len(owner) == len(DATA)
    with pytest.raises(BufferError):
        owner.close()  # it is itself what keeps the views counted
    del a, owner
    gc.collect()
    assert buf.exports == 0
    buf.close()
