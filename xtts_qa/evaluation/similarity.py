"""Speaker similarity with resemblyzer (its GE2E encoder ships inside the wheel, so this works offline).

Clips are resampled and voice-activity trimmed by resemblyzer's ``preprocess_wav``; the cosine similarity of
two utterance embeddings (unit vectors) is their dot product. A clip with no detectable speech has no embedding;
its similarity is None (reported as n/a with the ``no-voice`` flag), never 0.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

import numpy as np

from xtts_qa.extras import require

require("eval", ("resemblyzer",), feature="speaker similarity")

log = logging.getLogger("xtts_qa")

__all__ = ["SPEAKER_MODEL", "SpeakerEncoder", "cosine"]

#: recorded in reports
SPEAKER_MODEL = "resemblyzer-ge2e"


def cosine(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    """Cosine similarity; None when either side has no embedding (unmeasurable, not dissimilar)."""
    if a is None or b is None:
        return None
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return None
    return float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))


class SpeakerEncoder:
    """resemblyzer's VoiceEncoder, loaded once (lazily).

    Attributes:
        device: ``cpu`` or ``cuda``.
    """

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self._encoder: Any = None
        self._lock = threading.Lock()

    def identity(self) -> dict[str, Any]:
        import importlib.metadata

        from xtts_qa.evaluation.asr_models import resemblyzer_weights

        weights = resemblyzer_weights()
        digest = hashlib.blake2b(weights.read_bytes(), digest_size=8).hexdigest()
        return {"speaker": SPEAKER_MODEL, "version": importlib.metadata.version("resemblyzer"), "weights": digest}

    def _load(self) -> Any:
        with self._lock:
            if self._encoder is None:
                from resemblyzer import VoiceEncoder

                from xtts_qa.evaluation.asr_models import resemblyzer_weights

                self._encoder = VoiceEncoder(device=self.device, verbose=False, weights_fpath=resemblyzer_weights())
            return self._encoder

    def embed(self, samples: np.ndarray, sample_rate: int) -> np.ndarray | None:
        """A unit-norm 256-d embedding of the speech in a clip, or None when there is no speech."""
        from resemblyzer import preprocess_wav

        clean = np.nan_to_num(np.asarray(samples, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        if clean.size == 0 or float(np.max(np.abs(clean))) < 1e-4:
            return None
        wav = preprocess_wav(clean, source_sr=sample_rate)
        if wav.size < 1600:  # under 0.1 s of voiced audio at 16 kHz: nothing to embed
            return None
        encoder = self._load()
        with self._lock:  # the torch module is shared; one forward pass at a time
            return np.asarray(encoder.embed_utterance(wav), dtype=np.float32)
