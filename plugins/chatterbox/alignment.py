"""Guards against hallucinated speech: the alignment guard and the length guard.

:class:`AlignmentGuard` makes the decisions of chatterbox-tts 0.1.7's
``AlignmentStreamAnalyzer`` from the attention of the aligned heads (by default
(9, 2), (12, 15), (13, 11)): it suppresses the stop token until the text is
nearly spoken, and forces it on a long tail, on attention returning to earlier
text, and on token repetition. It is fed attention rows by whatever attention
backend produced them (eager maps, or seqopt's SDPA-aligned kernel), installs
no hooks and holds state for one generation only.

Where upstream would crash (a text of at most 5 tokens, once complete, makes
its repetition check reduce an empty tensor), the guard reports no repetition.

Token repetition: upstream's comment says "3x same token in a row", but its
check fires when the last *two* recorded tokens are equal (and at least three
were recorded, the first being the start token). seqopt keeps upstream's
behaviour by default, ``repetition_run=2``, so that both make the same
decisions (tested step by step); ``repetition_run=3`` follows the comment.

:class:`LengthGuard` is the cheap alternative some forks use instead of
attention: the stop token is suppressed below a minimum ratio of speech to
text tokens and forced above a maximum. It works with any backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

#: Upstream's force/suppress magnitude (safe for 16-bit dtypes).
BIG = float(2**15)


@dataclass
class AlignmentDecision:
    """What the guard saw at one step (mirrors upstream's analysis result)."""

    false_start: bool
    long_tail: bool
    alignment_repetition: bool
    token_repetition: bool
    discontinuity: bool
    complete: bool
    position: int
    suppressed_stop: bool
    forced_stop: bool


@dataclass
class AlignmentGuard:
    """Online integrity checks on T3's text-speech alignment, one generation long.

    ``text_slice`` is ``(start, end)`` of the text tokens in T3's input sequence
    (after the conditioning). Call :meth:`step` once per sampled token with the
    mean attention of the aligned heads: at the first step the whole prefill map
    ``(T0, T0)``, then one row ``(1, T0 + i)`` per step.
    """

    text_slice: tuple[int, int]
    stop_token: int
    repetition_run: int = 2
    alignment: torch.Tensor = field(init=False)
    decisions: list[AlignmentDecision] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        i, j = self.text_slice
        self.alignment = torch.zeros(0, j - i)
        self.frame = 0
        self.text_position = 0
        self.started = False
        self.started_at: int | None = None
        self.complete = False
        self.completed_at: int | None = None
        self.recent_tokens: list[int] = []

    def step(self, attention: torch.Tensor, logits: torch.Tensor, last_token: int | None) -> torch.Tensor:
        """Record this step's attention and return ``logits`` with the stop token
        suppressed or forced as upstream would. ``last_token`` is the token sampled
        at the previous step (the start token at the first step)."""
        i, j = self.text_slice
        chunk = attention[j:, i:j] if self.frame == 0 else attention[:, i:j]
        chunk = chunk.detach().float().cpu().clone()
        chunk[:, self.frame + 1:] = 0  # upstream's (loose) monotonic mask
        self.alignment = torch.cat((self.alignment, chunk), dim=0)
        a = self.alignment
        frames, text_len = a.shape

        position = int(chunk[-1].argmax())
        discontinuity = not (-4 < position - self.text_position < 7)
        if not discontinuity:
            self.text_position = position

        false_start = (not self.started) and bool(a[-2:, -2:].max() > 0.1 or a[:, :4].max() < 0.5)
        self.started = not false_start
        if self.started and self.started_at is None:
            self.started_at = frames

        self.complete = self.complete or self.text_position >= text_len - 3
        if self.complete and self.completed_at is None:
            self.completed_at = frames

        long_tail = self.complete and bool(a[self.completed_at:, -3:].sum(dim=0).max() >= 5)
        earlier = a[self.completed_at:, :-5]
        # upstream raises here on texts of at most 5 tokens (an empty slice); no
        # earlier text means no repetition of it
        alignment_repetition = self.complete and earlier.numel() > 0 and bool(
            earlier.max(dim=1).values.sum() > 5)

        if last_token is not None:
            self.recent_tokens = (self.recent_tokens + [int(last_token)])[-8:]
        run = self.repetition_run
        token_repetition = (len(self.recent_tokens) >= 3
                            and len(set(self.recent_tokens[-run:])) == 1)

        suppressed = position < text_len - 3 and text_len > 5
        if suppressed:
            logits[..., self.stop_token] = -BIG
        forced = long_tail or alignment_repetition or token_repetition
        if forced:
            logits = -BIG * torch.ones_like(logits)
            logits[..., self.stop_token] = BIG
        self.decisions.append(AlignmentDecision(
            bool(false_start), bool(long_tail), bool(alignment_repetition), bool(token_repetition),
            bool(discontinuity), bool(self.complete), int(self.text_position), bool(suppressed),
            bool(forced)))
        self.frame += 1
        return logits


@dataclass
class LengthGuard:
    """Stop token suppressed below ``min_ratio`` x text tokens, forced at ``max_ratio`` x."""

    text_tokens: int
    stop_token: int
    min_ratio: float = 1.0
    max_ratio: float = 8.0

    def step(self, generated: int, logits: torch.Tensor) -> torch.Tensor:
        if generated >= self.max_ratio * self.text_tokens:
            logits = -BIG * torch.ones_like(logits)
            logits[..., self.stop_token] = BIG
        elif generated < self.min_ratio * self.text_tokens:
            logits[..., self.stop_token] = -BIG
        return logits
