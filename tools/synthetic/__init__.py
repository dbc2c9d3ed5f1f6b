"""Synthetic microscopy data with exact ground truth.

Every generator is deterministic for a given ``seed`` and returns a small frozen dataclass that
holds the image, its ground truth and an :class:`~tools.types.ImageMeta`.

Conventions
-----------
* Intensity images are ``float32``, roughly in ``[0, 1]``: background about 0.05-0.2, the
  brightest objects about 0.8-1.0. Noise can push a few pixels slightly above 1; values are
  clipped at 0 from below, as a camera with its offset subtracted would report them.
* Label images are ``int32`` with 0 for background and consecutive labels ``1..N``.
* Objects are star-shaped (perturbed ellipses or ellipsoids). Where two objects overlap, each
  pixel belongs to the object whose scaled boundary distance is smallest, which splits a
  contact along a curved, Voronoi-like line: every pixel has exactly one label and every label
  is a single connected component.

The nuclei generators aim at looking like real fluorescence nuclei (stardist's
``test_image_nuclei_2d``): a StarDist model trained on plain uniform ellipses with Gaussian noise
is useless on real data, so brightness spread, texture, clumps, blur, uneven background and
Poisson-Gaussian noise are all simulated.
"""

from tools.synthetic.blobs import SyntheticBlobs, blobs
from tools.synthetic.ctc import TRACK_COLUMNS, CTCData, read_ctc, write_ctc
from tools.synthetic.movies import Timelapse, timelapse
from tools.synthetic.nuclei import SyntheticNuclei, nuclei_2d, nuclei_3d
from tools.synthetic.pairs import NoisyPair, noisy_clean_pair

__all__ = [
    "TRACK_COLUMNS",
    "CTCData",
    "NoisyPair",
    "SyntheticBlobs",
    "SyntheticNuclei",
    "Timelapse",
    "blobs",
    "noisy_clean_pair",
    "nuclei_2d",
    "nuclei_3d",
    "read_ctc",
    "timelapse",
    "write_ctc",
]
