"""The Slicer panel's own parts: Qt mixins, install gate, job probe, work folder, sample data and self-test."""
