"""A stop asked for by a signal during training, seen by the long steps inside it (a metrics
pass, a classifier's training): they give up at their next batch instead of running on for
minutes, so that the run saves its checkpoint and exits promptly."""


class StopRequested(Exception):
    """Raised by a long step when a stop signal arrived while it ran."""


_requested: list[int] = []


def request(signum: int) -> None:
    _requested.append(signum)


def requested() -> bool:
    return bool(_requested)


def clear() -> None:
    _requested.clear()


def check() -> None:
    """Raises ``StopRequested`` when a stop was asked for."""
    if _requested:
        raise StopRequested()
