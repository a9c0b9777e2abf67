"""Sample data for the module: an abdominal CT in Sample Data (LNSynth category), to try the panel at once."""

from __future__ import annotations

import os


def register() -> None:
    """An abdominal CT in Sample Data (LNSynth category), so the panel can be tried at once.

    The same file and checksum as Slicer's own `CTAAbdomenPanoramix` sample.
    """
    import SampleData
    from slicer.util import TESTING_DATA_URL

    digest = "146af87511520c500a3706b7b2bfb545f40d5d04dd180be3a7a2c6940e447433"
    SampleData.SampleDataLogic.registerCustomSampleDataSource(
        category="LNSynth", sampleName="CTAAbdomenPanoramix", uris=TESTING_DATA_URL + "SHA256/" + digest,
        fileNames="Panoramix-cropped.nrrd", nodeNames="Panoramix-cropped", checksums="SHA256:" + digest,
        thumbnailFileName=os.path.join(os.path.dirname(os.path.dirname(__file__)), "Resources", "Icons", "LNSynth.png"))
