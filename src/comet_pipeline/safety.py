"""Safe loading of user-supplied torch files: tensors and plain data only.

Every ``torch.load`` in this package passes ``weights_only=True``: a file that
holds any other pickled object (which could run code when unpickled) is
refused before anything in it runs. :func:`load_error_reason` turns torch's long
refusal message into a short, accurate reason for the error raised to the user.
"""

from __future__ import annotations

import re

_UNSAFE = re.compile(r"Unsupported global: GLOBAL (\S+)")
_DETAIL = re.compile(r"WeightsUnpickler error:\s*(.+?)\s*(?:\n\n|$)", re.S)


def load_error_reason(err: Exception) -> str:
    """Why ``torch.load(path, weights_only=True)`` failed, in one line.

    ``"refused: ..."`` when the file holds a pickled object other than tensors and
    plain data (the object is named), ``"unreadable or corrupt (...)"`` otherwise.
    """
    text = str(err)
    unsafe = _UNSAFE.search(text)
    if unsafe:
        return (
            f"refused: it holds objects other than tensors and plain data (a pickled {unsafe.group(1)}); "
            "torch.load(weights_only=True) never runs such code"
        )
    detail = _DETAIL.search(text)
    if detail:
        reason = detail.group(1).strip()
    else:
        reason = f"{type(err).__name__}: {text.strip().splitlines()[0] if text.strip() else ''}".rstrip(": ")
    return f"unreadable or corrupt ({reason})"
