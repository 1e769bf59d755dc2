"""A bounded curve: keeps at most `max_points` by averaging neighbours, so a million steps cost no more than 2,000."""

from __future__ import annotations


class Curve:
    """Append (x, y); memory stays bounded and points stay evenly spread over the whole run."""

    __slots__ = ("max_points", "xs", "ys", "bucket", "_px", "_py", "_n", "count", "last_x", "last_y", "min_y")

    def __init__(self, max_points: int = 2000):
        if max_points < 4:
            raise ValueError("max_points must be at least 4")
        self.max_points = max_points
        self.xs: list[float] = []
        self.ys: list[float] = []
        self.bucket = 1  # raw points per stored point
        self._px = self._py = 0.0
        self._n = 0
        self.count = 0
        self.last_x: float | None = None
        self.last_y: float | None = None
        self.min_y: float | None = None

    def append(self, x: float, y: float) -> None:
        self.count += 1
        self.last_x, self.last_y = x, y
        if self.min_y is None or y < self.min_y:
            self.min_y = y
        self._px += x
        self._py += y
        self._n += 1
        if self._n < self.bucket:
            return
        self.xs.append(self._px / self._n)
        self.ys.append(self._py / self._n)
        self._px = self._py = 0.0
        self._n = 0
        if len(self.xs) >= self.max_points:
            self._halve()

    def _halve(self) -> None:
        xs, ys = self.xs, self.ys
        n = len(xs) // 2 * 2
        self.xs = [(xs[i] + xs[i + 1]) / 2 for i in range(0, n, 2)] + xs[n:]
        self.ys = [(ys[i] + ys[i + 1]) / 2 for i in range(0, n, 2)] + ys[n:]
        self.bucket *= 2

    def truncate(self, max_x: float) -> None:
        """Forget points beyond `max_x` (a run resumed from an earlier checkpoint redoes those steps)."""
        keep = sum(1 for x in self.xs if x <= max_x)
        removed = (len(self.xs) - keep) * self.bucket
        if self._n and self._px / self._n > max_x:
            removed += self._n
            self._px = self._py = 0.0
            self._n = 0
        if removed:
            del self.xs[keep:], self.ys[keep:]
            self.count = max(0, self.count - removed)
            self.last_x = self.xs[-1] if self.xs else None
            self.last_y = self.ys[-1] if self.ys else None

    def points(self) -> tuple[list[float], list[float]]:
        """Stored points plus the partial bucket, so the newest value always shows."""
        if self._n:
            return self.xs + [self._px / self._n], self.ys + [self._py / self._n]
        return list(self.xs), list(self.ys)

    def __len__(self) -> int:
        return len(self.xs) + (1 if self._n else 0)


SMOOTHING_STEPS = (0.0, 0.6, 0.9, 0.97)  # the EMA weights `s` cycles through in the run view


def ema(ys: list[float], weight: float) -> list[float]:
    """TensorBoard's smoothing: an exponential moving average, debiased so the first points are not pulled to 0."""
    if not 0 <= weight < 1:
        raise ValueError("the smoothing weight must be in [0, 1)")
    out, last, norm = [], 0.0, 0.0
    for y in ys:
        last = last * weight + (1 - weight) * y
        norm = norm * weight + (1 - weight)
        out.append(last / norm)
    return out


def whole_ticks(lo: float, hi: float, most: int = 6) -> list[int]:
    """At most `most` whole-number ticks from lo to hi at a round spacing (1, 2, 5, 10, 20, 50, ...)."""
    first, last = int(lo), int(-(-hi // 1))
    span = max(last - first, 1)
    spacing = 1
    while span // spacing + 1 > most:
        for factor in (2, 5 / 2, 2):  # 1 → 2 → 5 → 10 → 20 → 50 …
            spacing = int(spacing * factor)
            if span // spacing + 1 <= most:
                break
    start = -(-first // spacing) * spacing
    return list(range(start, last + 1, spacing)) or [first]


def next_smoothing(weight: float) -> float:
    """The next weight in SMOOTHING_STEPS after `weight` (wrapping to none)."""
    later = [w for w in SMOOTHING_STEPS if w > weight + 1e-9]
    return later[0] if later else SMOOTHING_STEPS[0]
